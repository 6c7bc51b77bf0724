"""A hand-written RUN_DIR/insights/ (docs/INSIGHTS.md, format 1): 3 classes, 2 teachers that each
know two of them, 8×8 images (or a text, or a table variant), for the Insights panel's tests and
its screenshot (tests/gui/insights_screenshot.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES = ["cat", "dog", "a bird with a very long class name"]
TEACHERS = ["pets expert", "outdoor expert"]


def insights_json(kind: str = "image") -> dict:
    text, table = kind == "text", kind in ("table", "vector")
    no_input = text or table
    mistake_input = ({"thumbnail": None, "text": "a small dog barking at the cat next door", "row": None} if text
                     else {"thumbnail": None, "text": None, "row": {"legs": "4", "weight": "3.2", "wings": "0"}}
                     if table else {"thumbnail": "mistakes/000.png", "text": None, "row": None})
    second_input = ({"thumbnail": None, "text": "it sings every morning", "row": None} if text
                    else {"thumbnail": None, "text": None, "row": {"legs": "2", "weight": "0.1", "wings": "2"}}
                    if table else {"thumbnail": "mistakes/001.png", "text": None, "row": None})
    return {
        "format": 1,
        "run": {"dir": "/tmp/run", "name": "pets and birds", "student": "mlp"},
        "split": "test", "split_words": "the test split", "samples": 90, "labelled": 90, "kind": kind,
        "classes": CLASSES,
        "models": [
            {"name": "student", "role": "student", "classes": [0, 1, 2], "accuracy": 0.9, "ece": 0.031, "samples": 90},
            {"name": TEACHERS[0], "role": "teacher", "classes": [0, 1], "accuracy": 0.95, "ece": 0.02, "samples": 60},
            {"name": TEACHERS[1], "role": "teacher", "classes": [1, 2], "accuracy": 0.85, "ece": 0.08, "samples": 60},
        ],
        "amalgamation": [
            {"class": 0, "support": 30, "student": 0.9, "teachers": {TEACHERS[0]: 0.97},
             "best_teacher": TEACHERS[0], "best": 0.97, "delta": -0.07, "verdict": "trails"},
            {"class": 1, "support": 30, "student": 0.93, "teachers": {TEACHERS[0]: 0.9, TEACHERS[1]: 0.8},
             "best_teacher": TEACHERS[0], "best": 0.9, "delta": 0.03, "verdict": "beats"},
            {"class": 2, "support": 30, "student": 0.87, "teachers": {TEACHERS[1]: 0.86},
             "best_teacher": TEACHERS[1], "best": 0.86, "delta": 0.01, "verdict": "matches"},
        ],
        "confusion": {"counts": [[27, 2, 1], [1, 28, 1], [0, 4, 26]],
                      "normalized": [[0.9, 0.0667, 0.0333], [0.0333, 0.9333, 0.0333], [0.0, 0.1333, 0.8667]],
                      "order": [0, 2, 1]},
        "agreement": {"names": [*TEACHERS, "student"],
                      "rate": [[1.0, 0.8, 0.91], [0.8, 1.0, None], [0.91, None, 1.0]],
                      "samples": [[60, 30, 60], [30, 60, None], [60, None, 90]]},
        "calibration": {"edges": [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                        "models": [
                            {"name": "student", "ece": 0.031, "confidence": [None, 0.35, 0.52, 0.71, 0.93],
                             "accuracy": [None, 0.3, 0.5, 0.7, 0.95], "count": [0, 4, 8, 20, 58]},
                            {"name": TEACHERS[0], "ece": 0.02, "confidence": [None, None, 0.55, 0.75, 0.95],
                             "accuracy": [None, None, 0.5, 0.76, 0.96], "count": [0, 0, 5, 10, 45]},
                            {"name": TEACHERS[1], "ece": 0.08, "confidence": [0.15, 0.3, 0.5, 0.7, 0.9],
                             "accuracy": [0.0, 0.2, 0.4, 0.6, 0.8], "count": [1, 3, 6, 10, 40]},
                        ]},
        "mistakes": [
            {"sample": 17, "label": 0, "predicted": 1, "confidence": 0.91,
             "teachers": [{"name": TEACHERS[0], "says": 0, "confidence": 0.8},
                          {"name": TEACHERS[1], "says": None, "confidence": None}], **mistake_input},
            {"sample": 42, "label": 2, "predicted": 1, "confidence": 0.66,
             "teachers": [{"name": TEACHERS[0], "says": None, "confidence": None},
                          {"name": TEACHERS[1], "says": 1, "confidence": 0.55}], **second_input},
        ],
        "attribution": {
            "method": "integrated gradients",
            "samples": [
                {"sample": 17, "label": 0, "predicted": 1, "target": 1, "input": None if no_input else "attr_0_input",
                 "student": "attr_0_student", "attention": "attr_0_attention" if not table else None,
                 "teachers": {TEACHERS[0]: "attr_0_teacher_0", TEACHERS[1]: "attr_0_teacher_1"},
                 "tokens": ["a", "small", "dog", "barking", "at", "the", "cat"] if text else None},
                {"sample": 42, "label": 2, "predicted": 1, "target": 1, "input": None if no_input else "attr_1_input",
                 "student": "attr_1_student", "attention": None, "teachers": {TEACHERS[1]: "attr_1_teacher_1"},
                 "tokens": ["it", "sings", "every", "morning"] if text else None},
            ]},
        "pictures": {"amalgamation": "amalgamation.png", "confusion": "confusion.png",
                     "agreement": "agreement.png", "calibration": "calibration.png"},
        "notes": ["the test split has 90 samples; all were analysed"],
    }


def insights_arrays(kind: str = "image") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 90
    out = {"y": np.repeat(np.arange(3), 30).astype(np.int64), "sample": np.arange(n, dtype=np.int64),
           "student_probs": rng.dirichlet(np.ones(3), n).astype(np.float32),
           "teacher_0_probs": rng.dirichlet(np.ones(2), n).astype(np.float32),
           "teacher_1_probs": rng.dirichlet(np.ones(2), n).astype(np.float32)}
    shape = {"image": (8, 8), "text": None, "table": (3,), "vector": (3,)}[kind]
    for s, (size, teachers) in enumerate(((7, (0, 1)), (4, (1,)))):
        dims = (size,) if kind == "text" else shape
        if kind == "image":
            yy, xx = np.mgrid[0:8, 0:8]
            out[f"attr_{s}_input"] = np.stack([xx / 7, yy / 7, np.full((8, 8), 0.5)], axis=2).astype(np.float32)
        out[f"attr_{s}_student"] = rng.normal(size=dims).astype(np.float32)
        if s == 0 and kind != "table":
            out[f"attr_{s}_attention"] = rng.random(dims).astype(np.float32)
        for t in teachers:
            out[f"attr_{s}_teacher_{t}"] = rng.random(dims).astype(np.float32)
    return out


def write_insights(run_dir: Path, kind: str = "image") -> Path:
    """RUN_DIR/insights with insights.json, arrays.npz and (images) two thumbnails; its folder."""
    folder = Path(run_dir) / "insights"
    (folder / "mistakes").mkdir(parents=True, exist_ok=True)
    data = insights_json(kind)
    data["run"]["dir"] = str(run_dir)
    (folder / "insights.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    np.savez(folder / "arrays.npz", **insights_arrays(kind))
    if kind == "image":
        from PySide6.QtGui import QColor, QImage

        for i, color in enumerate(("#d97b2b", "#1f6feb")):
            image = QImage(8, 8, QImage.Format_RGB32)
            image.fill(QColor(color))
            image.save(str(folder / "mistakes" / f"{i:03d}.png"))
    return folder
