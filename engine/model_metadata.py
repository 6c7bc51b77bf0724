"""Reading the metadata export scripts write into model files (ONNX `metadata_props`,
safetensors `__metadata__`): key names and value spellings vary between scripts (timm,
torchvision, Hugging Face, hand-written), so keys are matched case-insensitively under their
usual names and values are read as JSON, comma- or space-separated lists, or fractions
like 1/255. Anything unreadable counts as absent. Torch-free.
"""

from __future__ import annotations

import json
import math
import re

KEYS = {  # what a setting is called in the scripts seen in the wild, most usual first
    "classes": ("classes", "class_names", "labels", "id2label", "names"),
    "mean": ("mean", "image_mean", "pixel_mean", "norm_mean", "normalize_mean", "input_mean"),
    "std": ("std", "image_std", "pixel_std", "norm_std", "normalize_std", "input_std"),
    "input_size": ("input_size", "image_size", "img_size", "resolution"),
    "crop_size": ("crop_size",),
    "crop_pct": ("crop_pct", "crop_ratio"),
    "interpolation": ("interpolation", "resample"),
    "layout": ("layout", "data_format", "data_layout", "input_layout"),
    "channel_order": ("channel_order", "color_order", "colour_order", "channels_order"),
    "scale": ("scale", "rescale_factor", "pixel_scale", "input_scale"),
    "columns": ("columns", "feature_names", "features", "input_columns"),
    "accuracy": ("accuracy", "top1", "acc", "val_accuracy", "test_accuracy"),
    "outputs": ("outputs", "output_type", "output_kind"),
}


def lookup(meta: dict, setting: str) -> tuple[str, str] | None:
    """(the key as written, its value) of the first usual name of a setting present."""
    lowered = {str(k).strip().lower(): (k, v) for k, v in meta.items()}
    for name in KEYS[setting]:
        if name in lowered and str(lowered[name][1]).strip():
            key, value = lowered[name]
            return str(key), str(value).strip()
    return None


def numbers(text: str) -> list[float] | None:
    """'[0.5, 0.5]', '0.5,0.5', '(0.5 0.5)', '0.5' or '1/255' as finite numbers; None if not."""
    try:
        parsed = json.loads(text)
        items = parsed if isinstance(parsed, list) else [parsed]
    except (json.JSONDecodeError, ValueError):
        items = [p for p in re.split(r"[,\s;x×]+", text.strip().strip("[]()")) if p]
    out = []
    for item in items:
        value = _number(item)
        if value is None:
            return None
        out.append(value)
    return out or None


def _number(item) -> float | None:
    """One finite number from JSON or text, fractions such as 1/255 included."""
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, float)):
        value = float(item)
    elif isinstance(item, str):
        parts = item.strip().split("/")
        try:
            value = float(parts[0]) / float(parts[1]) if len(parts) == 2 else float(item)
        except (ValueError, ZeroDivisionError):
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def strings(text: str) -> list[str] | None:
    """A JSON list (or a JSON {index: name} map, as Hugging Face's id2label) or comma-separated
    names, in order; None if empty."""
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        parsed = None
    if isinstance(parsed, list):
        names = [str(c) for c in parsed]
    elif isinstance(parsed, dict):
        try:
            names = [str(v) for _, v in sorted(parsed.items(), key=lambda kv: int(kv[0]))]
        except ValueError:
            return None
    else:
        names = [c.strip() for c in text.split(",")]
    names = [n for n in names if n != ""]
    return names or None


def word(text: str) -> str:
    """A one-word setting ('NHWC', 'channels_last', 'BGR') in lower case."""
    return text.strip().strip("\"'").lower().replace("-", "_")
