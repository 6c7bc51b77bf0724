"""A multi-layer perceptron on the flattened input (spec: `MlpArch`)."""

from __future__ import annotations

import math

from torch import nn

from engine.models.contract import Student
from engine.models.normalize import Normalize
from engine.models.registry import register
from engine.spec import MlpArch


@register("mlp")
class MLP(Student):
    """Linear-ReLU(-Dropout) layers, then the head. `widths` (one per hidden layer) replaces
    width × depth after structured pruning."""

    structured_pruning = True
    growable = MlpArch.growable

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: MlpArch,
                 widths: list[int] | None = None):
        super().__init__(sample_shape, n_classes, arch)
        self.normalize = Normalize(sample_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width_in = math.prod(sample_shape)
        for width in widths or [arch.width] * arch.depth:
            layers += [nn.Linear(width_in, width), nn.ReLU()]
            if arch.dropout:
                layers.append(nn.Dropout(arch.dropout))
            width_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width_in, n_classes)

    def prunable_layers(self) -> list[nn.Module]:
        return [m for m in self.body if isinstance(m, nn.Linear)]

    def hidden_widths(self) -> list[int]:
        return [m.out_features for m in self.prunable_layers()]
