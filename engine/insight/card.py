"""The insights in an export's MODEL_CARD.md: the amalgamation table, the confusion matrix,
calibration and agreement as pictures beside the card, with the figures in words.

The export reuses the run's analysis when it was made of this very student (its sha256), else
analyses the run first; an analysis that fails (a teacher file moved away since the run) leaves
the card without pictures and says why in the report's notes, never failing the export.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.errors import InputError, RunFailed
from engine.insight.analyze import FOLDER, FORMAT, PICTURES, analyze_run

__all__ = ["PICTURES", "card_section", "insights_for"]


def insights_for(run_dir: Path, student_sha256: str, progress, run_locked: bool = False,
                 ) -> tuple[dict | None, dict | None]:
    """(insights of this student, None) or (None, a note saying why there are none).
    `run_locked`: this process holds the run folder's lock (the run's own export)."""
    try:
        earlier = json.loads((run_dir / FOLDER / "insights.json").read_text(encoding="utf-8"))
        if earlier.get("format") == FORMAT and earlier.get("run", {}).get("student_sha256") == student_sha256 \
                and earlier.get("split") == "test" and earlier.get("complete") is True \
                and all((run_dir / FOLDER / p).is_file() for p in PICTURES.values()):
            return earlier, None  # this student's analysis of the whole test split: reused
    except (OSError, ValueError, AttributeError):
        pass
    try:
        return analyze_run(run_dir, "test", progress=lambda stage, f: progress("insights", 0.02 + 0.1 * f),
                           lock=not run_locked, fallback=True), None
    except (InputError, RunFailed) as exc:
        message, hint = (exc.problems[0].message, exc.problems[0].hint) if isinstance(exc, InputError) \
            else (exc.message, exc.hint)
    except Exception as exc:  # noqa: BLE001 — the export itself does not depend on it
        message, hint = f"{type(exc).__name__}: {exc}", "run `distill-engine analyze` on the run to see the details"
    return None, {"kind": "no_insights", "message": f"the model card has no insight pictures: the analysis "
                  f"failed ({message})", "hint": hint}


def card_section(insights: dict) -> str:
    """Markdown for the model card; the pictures lie beside it under PICTURES' names."""
    rows = "\n".join(
        f"| {m['role']} {m['name']} | {_pct(m['accuracy'])} | {_ece(m['ece'])} | {m['samples']} |"
        for m in insights["models"])
    beats = [r for r in insights["amalgamation"] if r["verdict"] == "beats"]
    trails = [r for r in insights["amalgamation"] if r["verdict"] == "trails"]
    classes = insights["classes"]

    def named(rs: list[dict]) -> str:
        return ", ".join(f"{classes[r['class']]} ({100 * r['delta']:+.1f} points vs {r['best_teacher']})" for r in rs)
    verdict = []
    if beats:
        verdict.append(f"The student beats the best teacher of its class on {len(beats)} classes: {named(beats)}.")
    if trails:
        verdict.append(f"It trails on {len(trails)}: {named(trails)}.")
    return (f"\n## What the student learned, and from whom\n\n"
            f"Measured on {insights['split_words']} ({insights['samples']} samples) by `distill-engine analyze`; "
            "a teacher is measured on the samples of the classes it knows, choosing among its own classes.\n\n"
            f"| model | accuracy | ECE | samples |\n|---|---|---|---|\n{rows}\n\n"
            + (" ".join(verdict) + "\n\n" if verdict else "")
            + f"![Per class: the student beside its teachers]({PICTURES['amalgamation']})\n\n"
            f"![Confusion matrix]({PICTURES['confusion']})\n\n"
            f"![Calibration: reliability diagram and expected calibration error]({PICTURES['calibration']})\n\n"
            f"![Agreement between the teachers and the student]({PICTURES['agreement']})\n")


def _pct(v: float | None) -> str:
    return "not measured" if v is None else f"{100 * v:.1f}%"


def _ece(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"
