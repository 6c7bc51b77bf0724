"""The `distill-engine analyze` command: the analysis (engine/insight/analyze.py) with its
progress and result as events (`--events`, the app's way), or a summary in plain words.

Exit codes: 0 done, 1 failed, 2 invalid input (not a finished run, teachers or data that
cannot be read), 3 cancelled (`stop` on stdin, Ctrl-C).
"""

from __future__ import annotations

import signal
import sys

from engine.errors import InputError, RunFailed
from engine.text_safety import say

EXIT_INVALID, EXIT_CANCELLED = 2, 3  # the engine's codes (engine/run.py): invalid input, stopped by the user


def cmd_analyze(args) -> int:
    from engine.events import Control, Emitter
    from engine.insight.analyze import Cancelled, analyze_run

    emitter = Emitter.take_stdout() if args.events else Emitter()
    emitter.enabled = args.events  # in a terminal: plain words on stdout, no events
    control = Control(emitter)
    if args.events:
        control.listen()  # `stop` on stdin, SIGINT/SIGTERM
    else:
        signal.signal(signal.SIGINT, lambda *_: control.command("stop"))  # Ctrl-C: cancelled, said

    def fail(kind: str, message: str, hint: str, code: int, field: str | None = None) -> int:
        if args.events:
            emitter.error(kind, message, hint, **({"field": field} if field else {}))
            emitter.emit("finished", status="failed", exit_code=code)
        else:
            say(f"cannot analyse: {message}\n  hint: {hint}", file=sys.stderr)
        return code

    for name in ("mistakes", "attributions", "limit"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "limit" else 0):
            return fail("invalid_input", f"--{name} must be {'at least 1' if name == 'limit' else '0 or more'}, "
                        f"not {value}", f"give --{name} a whole number", EXIT_INVALID, f"--{name}")

    def progress(stage: str, fraction: float) -> None:
        if args.events:
            emitter.emit("progress", phase="analyze", stage=stage, fraction=round(fraction, 4))

    try:
        insights = analyze_run(args.run_dir, args.split, args.mistakes, args.attributions, args.limit,
                               progress, lambda: control.stop_requested)
    except Cancelled:
        if args.events:
            emitter.emit("finished", status="stopped", exit_code=EXIT_CANCELLED)
        else:
            say("analysis cancelled; nothing was written", file=sys.stderr)
        return EXIT_CANCELLED
    except InputError as exc:
        p = exc.problems[0]
        if not args.events and len(exc.problems) > 1:
            for q in exc.problems[1:]:
                say(f"  also: {q.message}\n  hint: {q.hint}", file=sys.stderr)
        return fail(exc.kind, p.message, p.hint, EXIT_INVALID, p.path)
    except RunFailed as exc:
        return fail(exc.kind, exc.message, exc.hint, 1)
    except Exception as exc:  # noqa: BLE001 — a bug or a library failure: say it, never hide it
        import traceback

        traceback.print_exc()
        return fail("crash", f"the analysis failed unexpectedly: {type(exc).__name__}: {exc}",
                    "the details are on stderr; please report them with the run's spec", 1)
    folder = args.run_dir / "insights"
    if args.events:
        emitter.emit("finished", status="completed", exit_code=0, out=str(folder.resolve()), report=insights)
        return 0
    for line in summary(insights):
        say(line)
    say(f"files in {folder}")
    return 0


def summary(insights: dict) -> list[str]:
    """The analysis in a few lines for a terminal."""
    classes = insights["classes"]
    lines = [f"{insights['run']['name']}: {insights['samples']} samples of {insights['split_words']}"]
    for m in insights["models"]:
        acc = "accuracy not measured (no labels)" if m["accuracy"] is None else \
            f"accuracy {m['accuracy']:.3f} on {m['samples']} samples, ECE {m['ece']:.3f}"
        lines.append(f"  {m['role']} {m['name']}: {acc}")
    rows = [r for r in insights["amalgamation"] if r["verdict"] in ("beats", "trails")]
    for verdict in ("beats", "trails"):
        named = [f"{classes[r['class']]} ({100 * r['delta']:+.1f} vs {r['best_teacher']})"
                 for r in rows if r["verdict"] == verdict]
        if named:
            lines.append(f"  the student {verdict} its best teacher on: " + ", ".join(named[:8])
                         + (f" and {len(named) - 8} more" if len(named) > 8 else ""))
    counts = insights["confusion"]["counts"]
    pairs = sorted(((counts[i][j], i, j) for i in range(len(counts)) for j in range(len(counts))
                    if i != j and counts[i][j]), reverse=True)[:3]
    if pairs:
        lines.append("  most confused: " + ", ".join(f"{classes[i]} → {classes[j]} ({n})" for n, i, j in pairs))
    lines.append(f"  {len(insights['mistakes'])} mistakes listed, "
                 f"{len(insights['attribution']['samples'])} samples explained")
    lines.extend(f"  note: {n}" for n in insights["notes"])
    return lines
