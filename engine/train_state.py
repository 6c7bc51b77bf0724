"""Everything that decides the next training step, saved and restored as one: the student, the
learned parts of the loss, the optimiser and its schedule, the loss scaler, the random states
and the position (phase, epoch, batch, step). Written as a checkpoint by engine/checkpoint.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine import compress
from engine.checkpoint import save_checkpoint
from engine.models import hidden_widths
from engine.spec import TrainingSpec


def make_optimizer(params: list[nn.Parameter], cfg: TrainingSpec, lr: float, steps: int):
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        # every parameter on a GPU: one fused kernel for the whole update, not several per tensor
        fused = bool(params) and all(p.device.type == "cuda" for p in params)
        opt = cls(params, lr=lr, weight_decay=cfg.weight_decay, **({"fused": True} if fused else {}))
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    return opt, sched


@dataclass
class TrainState:
    model: nn.Module
    criterion: nn.Module  # engine.strategies.Criterion: its learned parts (adapters, heads)
    scaler: torch.amp.GradScaler
    order: torch.Generator  # the shuffle of each epoch
    device: torch.device
    phase: int = 0
    step: int = 0
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object | None = None

    def start_phase(self, phase: int, cfg: TrainingSpec, lr: float, steps: int) -> None:
        """A fresh optimiser and schedule for the phase's parameters."""
        self.phase = phase
        params = list(self.model.parameters()) + self.criterion.learned_parameters()
        self.optimizer, self.scheduler = make_optimizer(params, cfg, lr, steps)
        self.optimizer.zero_grad(set_to_none=True)

    def backward(self, loss: torch.Tensor) -> None:
        """The gradients of one part of an accumulated batch, added to those of the parts before."""
        (self.scaler.scale(loss) if self.scaler.is_enabled() else loss).backward()

    def unscale(self) -> None:
        """The gradients divided by the loss scale now (fp16), as `step_optimizer` would do
        before its step: for reading them (gradient norms) between the two."""
        if self.scaler.is_enabled():
            self.scaler.unscale_(self.optimizer)

    def step_optimizer(self) -> None:
        """The optimiser step on the gradients accumulated since the last one, with the scaler
        (fp16) and the schedule; then the gradients are cleared for the next step."""
        if self.scaler.is_enabled():
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:  # the disabled scaler's own checks cost more than a small model's step
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def snapshot(self, epoch: int, batch: int, order_state: torch.Tensor) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(), "order_rng": order_state,
            # this process's GPU only (under torchrun each rank has its own; all draw alike)
            "cuda_rng": [torch.cuda.get_rng_state(self.device)] if self.device.type == "cuda" else [],
            "phase": self.phase, "widths": hidden_widths(self.model), "masked": compress.is_masked(self.model),
            "aux": (self.criterion.state_dict() or None) if self.criterion.distilling else None,
            "epoch": epoch, "batch": batch, "step": self.step,
        }

    def save(self, folder: Path, epoch: int, batch: int, order_state: torch.Tensor) -> Path:
        return save_checkpoint(folder, self.snapshot(epoch, batch, order_state), self.step,
                               {"phase": self.phase, "epoch": epoch, "batch": batch})

    def restore(self, saved: dict) -> tuple[int, int]:
        """Load a checkpoint taken in this phase; returns (epoch, batch) to go on from."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"])
        if self.device.type == "cuda" and saved.get("cuda_rng"):
            torch.cuda.set_rng_state(saved["cuda_rng"][0], self.device)
        self.order.set_state(saved["order_rng"])
        self.step = saved["step"]
        return saved["epoch"], saved["batch"]
