"""Engine events (JSON lines) rendered as short lines of text for a person at a terminal."""

from __future__ import annotations

from engine.events import Artifact, Error, Event, Finished, Log, Metric, Started, TeacherOutputs
from gui.engine_client.events import EventReader, ProtocolProblem


class EventText:
    """Turns each line of the engine's stdout into zero or more lines of text; remembers what it
    needs across events. A line that is not an event is said as a protocol problem."""

    def __init__(self) -> None:
        self.epochs = 0
        self.last_loss: float | None = None
        self.finished: Finished | None = None
        self._reader = EventReader()

    def feed(self, line: str) -> list[str]:
        return [out for item in self._reader.read_line(line) for out in self.render(item)]

    def render(self, item: Event | ProtocolProblem) -> list[str]:
        if isinstance(item, ProtocolProblem):
            return [f"(engine) {item.message}"] if item.message else []
        handler = getattr(self, f"_on_{item.event}", None)
        return handler(item) if handler else []

    def _on_started(self, e: Started) -> list[str]:
        self.epochs = e.epochs
        teachers = ", ".join(t.name for t in e.teachers)
        return [f"run {e.run_id} '{e.name}' on {e.device} ({e.threads} threads, {e.precision})",
                (f"  data: {e.split.train} train / {e.split.val} val / {e.split.test} test samples"
                 f"{'' if e.labeled else ', unlabeled'}"),
                f"  teachers: {teachers}", f"  run folder: {e.run_dir}"]

    def _on_metric(self, e: Metric) -> list[str]:
        if "loss/total" in e.values:
            self.last_loss = e.values["loss/total"]
        shown = {k: v for k, v in e.values.items() if k.startswith(("val/", "test/"))}
        if not shown:
            return []
        prefix = "test" if any(k.startswith("test/") for k in shown) else f"epoch {int(e.epoch)}/{self.epochs}"
        loss = f"  loss {self.last_loss:.4f}" if self.last_loss is not None and prefix != "test" else ""
        return [f"{prefix}{loss}  " + "  ".join(f"{k} {_num(v)}" for k, v in shown.items())]

    def _on_log(self, e: Log) -> list[str]:
        return [f"  {'' if e.level == 'info' else e.level + ': '}{e.message}"]

    def _on_teacher_outputs(self, e: TeacherOutputs) -> list[str]:
        return [f"  {e.message}"]

    def _on_artifact(self, e: Artifact) -> list[str]:
        return [f"  saved {e.kind}: {e.path}"]

    def _on_error(self, e: Error) -> list[str]:
        lines = [f"error ({e.kind}): {e.message}", f"  hint: {e.hint}"]
        for p in (e.problems or [])[1:]:
            lines += [f"error: {p.path}: {p.message}", f"  hint: {p.hint}"]
        return lines

    def _on_finished(self, e: Finished) -> list[str]:
        self.finished = e
        best, final = e.best or {}, e.final or {}
        figures = [f"best val/acc {_num(best['val/acc'])}"] if "val/acc" in best else []
        figures += [f"test/acc {_num(final['test/acc'])}"] if "test/acc" in final else []
        return [f"finished: {e.status}" + (f" ({', '.join(figures)})" if figures else "")]


def _num(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
