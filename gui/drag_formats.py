"""What is dragged between the palette and the canvas: the MIME types of a node kind and of a
model-library entry, and the file suffixes read as model files. Data files are told by the
spec's own `file_patterns` (gui.document.schema.DATA_FORMATS; gui.canvas.drops.data_format)."""

from __future__ import annotations

KIND_MIME = "application/x-distill-node-kind"
MODEL_MIME = "application/x-distill-model"
MODEL_SUFFIXES = {".onnx", ".safetensors", ".pt", ".pth"}
