"""The app's side of the engine process: starts `python -m engine …` with QProcess, never blocks."""
