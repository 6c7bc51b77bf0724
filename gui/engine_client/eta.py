"""A steady time-left estimate for the status bar, from the engine's training progress events.

The engine's own `eta_s` comes from the speed of the last quarter second: it jumps (144 → 246 →
19 → 40 → 118 s within 15 s) with validation passes, data waits and a busy machine. Here the
speed is the app's own measure, steps per wall-clock second between progress events, averaged
with exponentially decaying weights (a time constant of TAU_S seconds; a long interval such as
a validation pass weighs by its length). Nothing is said before MIN_MEASURED_S seconds of
measured progress ("estimating…"), and what is said is rounded ("about 2 min"). Qt-free.
"""

from __future__ import annotations

import math

TAU_S = 60.0  # how far back the speed looks (its weights halve every ~40 s)
MIN_MEASURED_S = 4.0  # measured progress before the first estimate
MIN_INTERVALS = 3


class EtaEstimator:
    """Feed it each training progress (`update`); `text()` says the time left of the phase."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._phase: tuple | None = None
        self._last: tuple[float, int] | None = None  # (time, step) of the last progress
        self._steps = 0.0  # decayed sums: steps done and seconds taken
        self._seconds = 0.0
        self._intervals = 0
        self._measured_s = 0.0  # seconds of progress measured, undecayed (the warm-up)
        self._rate = 0.0  # samples per second, averaged the same way
        self._eta: float | None = None

    def hold(self) -> None:
        """A pause: the time until the next progress is not training time."""
        self._last = None

    def update(self, now: float, step: int, total_steps: int, samples_per_s: float | None = None,
               phase: tuple = ()) -> None:
        """One progress event, seen at `now` (seconds, monotonic); another `phase` (a prune step's
        fine-tuning) or a step that went back (a resumed run) starts a new estimate."""
        if phase != self._phase or (self._last is not None and step < self._last[1]):
            self.reset()
            self._phase = phase
        if self._last is not None:
            dt, ds = now - self._last[0], step - self._last[1]
            if dt > 0:
                decay = math.exp(-dt / TAU_S)
                self._steps = self._steps * decay + ds
                self._seconds = self._seconds * decay + dt
                self._intervals += 1
                self._measured_s += dt
                if samples_per_s is not None and samples_per_s > 0:
                    self._rate = samples_per_s if self._rate == 0 else \
                        self._rate * decay + samples_per_s * (1 - decay)
        elif samples_per_s and self._rate == 0:
            self._rate = samples_per_s
        self._last = (now, step)
        measured = self._intervals >= MIN_INTERVALS and self._measured_s >= MIN_MEASURED_S
        speed = self._steps / self._seconds if self._seconds > 0 else 0.0
        self._eta = max(0, total_steps - step) / speed if measured and speed > 0 else None

    @property
    def eta_s(self) -> float | None:
        """Seconds left, or None while still estimating."""
        return self._eta

    @property
    def samples_per_s(self) -> float:
        return self._rate

    def text(self) -> str:
        return "estimating…" if self._eta is None else about(self._eta)


def about(seconds: float) -> str:
    """A time left in round words: 'a few seconds', 'about 40 s', 'about 2 min', 'about 1 h 20 min'."""
    if seconds < 10:
        return "a few seconds"
    if seconds < 50:
        return f"about {round(seconds / 5) * 5} s"
    if seconds < 90:
        return "about 1 min"
    if seconds < 3600 - 150:
        minutes = round(seconds / 60)
        return f"about {minutes if minutes < 20 else round(seconds / 300) * 5} min"
    hours, minutes = divmod(round(seconds / 300) * 5, 60)
    return f"about {hours} h" + (f" {minutes} min" if minutes else "")


def round_rate(rate: float) -> str:
    """Samples per second to three significant figures: '1,230', '45.6'."""
    if rate < 100:
        return f"{rate:.3g}"
    return f"{round(rate, 2 - int(math.floor(math.log10(rate)))):,.0f}"
