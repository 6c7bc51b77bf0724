"""Engine events (JSON lines) rendered as short lines of text for a person at a terminal."""

from __future__ import annotations

import json


class EventText:
    """Turns each event into zero or more lines; remembers what it needs across events."""

    def __init__(self) -> None:
        self.epochs = 0
        self.last_loss: float | None = None
        self.finished: dict | None = None

    def feed(self, line: str) -> list[str]:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return [f"(engine) {line.rstrip()}"]
        kind = event.get("event")
        handler = getattr(self, f"_on_{kind}", None)
        return handler(event) if handler else []

    def _on_started(self, e: dict) -> list[str]:
        self.epochs = e.get("epochs", 0)
        split = e.get("split", {})
        teachers = ", ".join(t["name"] for t in e.get("teachers", []))
        return [f"run {e.get('run_id')} '{e.get('name')}' on {e.get('device')} "
                f"({e.get('threads')} threads, {e.get('precision')})",
                f"  data: {split.get('train', 0)} train / {split.get('val', 0)} val / "
                f"{split.get('test', 0)} test samples{'' if e.get('labeled') else ', unlabeled'}",
                f"  teachers: {teachers}", f"  run folder: {e.get('run_dir')}"]

    def _on_metric(self, e: dict) -> list[str]:
        values = e.get("values", {})
        if "loss/total" in values:
            self.last_loss = values["loss/total"]
        shown = {k: v for k, v in values.items() if k.startswith(("val/", "test/"))}
        if not shown:
            return []
        prefix = "test" if any(k.startswith("test/") for k in shown) else \
            f"epoch {int(e.get('epoch', 0))}/{self.epochs}"
        loss = f"  loss {self.last_loss:.4f}" if self.last_loss is not None and prefix != "test" else ""
        return [f"{prefix}{loss}  " + "  ".join(f"{k} {_num(v)}" for k, v in shown.items())]

    def _on_log(self, e: dict) -> list[str]:
        level = e.get("level", "info")
        return [f"  {'' if level == 'info' else level + ': '}{e.get('message', '')}"]

    def _on_artifact(self, e: dict) -> list[str]:
        return [f"  saved {e.get('kind')}: {e.get('path')}"]

    def _on_error(self, e: dict) -> list[str]:
        lines = [f"error ({e.get('kind')}): {e.get('message')}", f"  hint: {e.get('hint')}"]
        for p in e.get("problems", [])[1:]:
            lines += [f"error: {p['path']}: {p['message']}", f"  hint: {p['hint']}"]
        return lines

    def _on_finished(self, e: dict) -> list[str]:
        self.finished = e
        best = e.get("best") or {}
        final = e.get("final") or {}
        figures = [f"best val/acc {_num(best['val/acc'])}"] if "val/acc" in best else []
        figures += [f"test/acc {_num(final['test/acc'])}"] if "test/acc" in final else []
        return [f"finished: {e.get('status')}" + (f" ({', '.join(figures)})" if figures else "")]


def _num(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
