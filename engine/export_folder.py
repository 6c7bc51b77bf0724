"""Which files in an export folder an export may replace or remove (torch-free).

An export writes `export-manifest.json` beside its files: each file's name and sha256. A later
export into the same folder replaces or removes exactly those files, and only while they are
as the export left them. Any other file under a name the export uses (one a user put there, an
export's file that was edited since, a symlink) makes the export refuse the folder, naming the
files; files under other names are never touched. A run folder is not an export folder: its
files are the run's own (export to `RUN/export`, the default, or elsewhere).

The manifest is written first with the names about to be written (no hash: "being written"),
so the files of an export that was killed half-way are still known as the product's.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.atomic_io import atomic_write_text
from engine.errors import InputError
from engine.model_files import sha256_of

MANIFEST = "export-manifest.json"
FILES = ("student.onnx", "student.int8.onnx", "student.safetensors", "report.json", "MODEL_CARD.md",
         "tokenizer.json",  # a text student's tokenizer (engine/text_export.py)
         "amalgamation.png", "confusion.png", "agreement.png", "calibration.png")  # the card's (engine/insight)
SCRATCH = (".student.core.onnx", ".student.prep.onnx")  # written and removed during an export


def claim(out_dir: Path, run_dir: Path, writing: list[str], optional: tuple[str, ...] = ()) -> set[str]:
    """Check that the export may write `writing` into `out_dir` and record them as being
    written; returns the names of earlier exports' files it may remove (still as written).
    InputError for a run folder, or for files under the export's names that it did not write —
    except `optional` ones (the model card's pictures): see `foreign`, and leave those out."""
    if out_dir.resolve() == run_dir.resolve() or (out_dir / "run.json").is_file() or \
            (out_dir / "checkpoints").is_dir():
        raise InputError.one("--out", f"{out_dir} is a run folder: its files are the run's own, and "
                             "an export never replaces them", f"export to a folder of its own, e.g. "
                             f"{run_dir / 'export'}")
    ours = _manifest(out_dir)
    foreign, mine = [], set()
    for name in (*FILES, *SCRATCH, MANIFEST):
        if name in optional:
            continue
        path = out_dir / name
        if not path.exists() and not path.is_symlink():
            continue
        if name == MANIFEST and ours is not None:
            continue
        if name in (ours or {}) and not path.is_symlink() and path.is_file() and \
                (ours[name] is None or sha256_of(path) == ours[name]):
            mine.add(name)
        else:
            foreign.append(name)
    if foreign:
        edited = [n for n in foreign if n in (ours or {})]
        raise InputError.one("--out", f"{out_dir} holds {', '.join(foreign)}, which "
                             + ("were changed after an export wrote them" if edited == foreign else
                                "no export wrote" if not edited else "no export wrote or were changed since")
                             + "; an export never overwrites or deletes files it did not write",
                             "move those files away, or export to a new or empty folder")
    record(out_dir, {**{n: (ours or {}).get(n) for n in mine}, **dict.fromkeys((*writing, *SCRATCH))})
    return mine - set(writing)


def foreign(out_dir: Path, names) -> list[str]:
    """Those of `names` that lie in `out_dir` but no export wrote (or that were changed since)."""
    ours = _manifest(out_dir) or {}
    out = []
    for name in names:
        path = out_dir / name
        if not path.exists() and not path.is_symlink():
            continue
        if name not in ours or path.is_symlink() or not path.is_file() or \
                (ours[name] is not None and sha256_of(path) != ours[name]):
            out.append(name)
    return out


def record(out_dir: Path, files: dict[str, str | None]) -> None:
    """Write the manifest: the export's files and their sha256 (None: being written)."""
    atomic_write_text(out_dir / MANIFEST, json.dumps(
        {"written_by": "distill-engine export", "files": dict(sorted(files.items()))}, indent=1))


def _manifest(out_dir: Path) -> dict[str, str | None] | None:
    """The files an earlier export recorded, or None (no manifest, or one that is not ours)."""
    path = out_dir / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or data.get("written_by") != "distill-engine export":
        return None
    return {k: v for k, v in files.items() if k in (*FILES, *SCRATCH) and (v is None or isinstance(v, str))}
