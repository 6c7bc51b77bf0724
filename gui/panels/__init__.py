"""Dockable panels around the canvas: palette (node kinds, model library) and inspector."""
