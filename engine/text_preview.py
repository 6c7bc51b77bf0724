"""`distill-engine preview-text FILE`: what a text data file holds, for the app's data node: how
many texts and classes, a few texts of each class (or the first texts, unlabelled). Torch-free;
the app runs it in an engine child (gui/text_previews.py) so that reading a large file never
holds up the window, and a file the engine refuses shows the engine's own message."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from engine.data.text_files import read_texts

MAX_TEXTS = 200_000  # texts counted; past them the counts are of the first MAX_TEXTS
MAX_CLASSES = 24  # classes whose texts are shown (all are counted)
MAX_CHARS = 2000  # of one text shown: the app elides it to a line, the tooltip shows this much


def preview(path: Path, text_column: str = "text", label_column: str | None = None,
            per_class: int = 4) -> dict:
    """{file, texts, blank, complete (False: only the first MAX_TEXTS were counted), labelled,
    classes_total, groups: [{class (None: unlabelled), count, texts}]}. InputError as training
    would raise it (not UTF-8, a missing column, no texts)."""
    texts, labels, blank = read_texts(Path(path), text_column, label_column, "data.path", limit=MAX_TEXTS)
    out = {"file": str(path), "texts": len(texts), "blank": blank, "complete": len(texts) < MAX_TEXTS,
           "labelled": labels is not None}
    if labels is None:
        out |= {"classes_total": 0, "groups": [{"class": None, "count": len(texts),
                                                  "texts": [_cut(t) for t in texts[:2 * per_class]]}]}
        return out
    counts = Counter(labels)
    shown: dict[str, list[str]] = {}
    for text, label in zip(texts, labels):
        if label not in shown and len(shown) >= MAX_CLASSES:
            continue
        group = shown.setdefault(label, [])
        if len(group) < per_class:
            group.append(_cut(text))
    out |= {"classes_total": len(counts),
            "groups": [{"class": c, "count": counts[c], "texts": t} for c, t in shown.items()]}
    return out


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"


def format_preview(result: dict) -> list[str]:
    more = "" if result["complete"] else f" (the first {MAX_TEXTS:,})"
    if result["labelled"]:
        lines = [f"{result['texts']:,} texts{more} in {result['classes_total']} classes"]
    else:
        lines = [f"{result['texts']:,} texts{more}, unlabelled"]
    if result.get("blank"):
        lines[0] += f"; {result['blank']:,} blank left out"
    for group in result["groups"]:
        lines.append(f"{group['class']} · {group['count']:,}" if group["class"] is not None else "first texts:")
        lines += ["  " + " ".join(t.split())[:100] for t in group["texts"]]
    return lines
