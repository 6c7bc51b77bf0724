"""Distill Studio's app. Never imports torch: all heavy work runs in the engine process."""
