"""Distill Studio's engine: runs pipeline specs headless. Light at import: no torch, no Qt."""

__version__ = "0.1.0"
