"""Residual networks for images [C, H, W] (spec: `ResNetArch`).

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016): each block
adds its input to what its convolutions compute, y = ReLU(x + F(x)), so depth does not make
training harder. Basic block F = conv3×3-BN-ReLU-conv3×3-BN (depths 18 and 34); bottleneck
F = conv1×1-BN-ReLU-conv3×3-BN-ReLU-conv1×1-BN with 4× wider outputs (depth 50). Where a
stage changes channels or halves the map, a 1×1 convolution (with BN) carries the shortcut.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.arch_sizes import RESNET_BLOCKS, resnet_small_stem, resnet_stage_channels
from engine.errors import InputError
from engine.models.contract import Student
from engine.models.normalize import Normalize
from engine.models.pruning import Cut, check_keep, l1_scores
from engine.models.registry import register
from engine.spec import ResNetArch

BLOCKS = RESNET_BLOCKS  # blocks per stage, by depth (shared with the size arithmetic)


def stage_channels(arch: ResNetArch) -> list[int]:
    """Channels of the four stages' blocks (inner width for bottlenecks): 64·width, doubling."""
    return resnet_stage_channels(arch.width)


def small_stem(arch: ResNetArch, sample_shape: tuple[int, ...]) -> bool:
    return resnet_small_stem(arch.stem, sample_shape)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.shortcut(x) + self.bn2(self.conv2(out)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.shortcut(x) + self.bn3(self.conv3(out)))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


@register("resnet")
class ResNet(Student):
    """Stem, four stages of residual blocks (`body.stage1` … `body.stage4`, each block
    `body.stageS.B`), global average pooling, the head. `widths` (the inner widths of every
    block, in order: one per basic block, two per bottleneck) replace the stage widths after
    structured pruning; the channels of the residual stream (what the additions join) stay."""

    structured_pruning = True
    growable = ResNetArch.growable

    def __init__(self, sample_shape: tuple[int, ...], n_classes: int, arch: ResNetArch,
                 widths: list[int] | None = None):
        super().__init__(sample_shape, n_classes, arch)
        self.normalize = Normalize(sample_shape)
        block = Bottleneck if arch.depth == 50 else BasicBlock
        channels = stage_channels(arch)
        c_in = sample_shape[0]
        if small_stem(arch, sample_shape):
            stem = [nn.Conv2d(c_in, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()]
        else:
            stem = [nn.Conv2d(c_in, channels[0], 7, 2, 3, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(),
                    nn.MaxPool2d(3, 2, 1)]
        per_block = 2 if block is Bottleneck else 1
        wanted = per_block * sum(BLOCKS[arch.depth])
        if widths is not None and (len(widths) != wanted or min(widths) < 1):
            shown = f"{list(widths[:8])}{' …' if len(widths) > 8 else ''}"
            raise InputError.one("student.architecture", f"the hidden widths {shown} do not fit a "
                                 f"ResNet-{arch.depth}: it takes {wanted} widths (the inner width"
                                 f"{'s' if per_block > 1 else ''} of each block), each at least 1",
                                 "give weights a run saved with this architecture (its depth), or "
                                 "remove 'widths' from the file's metadata", "corrupt_model")
        inner = iter(widths) if widths is not None else None
        layers: dict[str, nn.Module] = {"stem": nn.Sequential(*stem)}
        c = channels[0]
        for s, (n_blocks, width) in enumerate(zip(BLOCKS[arch.depth], channels)):
            blocks = []
            for b in range(n_blocks):
                stride = 2 if s > 0 and b == 0 else 1
                mid = width if inner is None else next(inner)
                if block is Bottleneck and inner is not None:
                    mid2 = next(inner)
                    blk = block(c, mid, width * block.expansion, stride)
                    _narrow_bottleneck(blk, mid, mid2, c, width * block.expansion, stride)
                else:
                    blk = block(c, mid, width * block.expansion, stride)
                blocks.append(blk)
                c = width * block.expansion
            layers[f"stage{s + 1}"] = nn.Sequential(*blocks)
        layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        if arch.dropout:
            layers["dropout"] = nn.Dropout(arch.dropout)
        self.body = nn.Sequential()
        for name, layer in layers.items():
            self.body.add_module(name, layer)
        self.head = nn.Linear(c, n_classes)

    def residual_blocks(self) -> list[nn.Module]:
        return [blk for s in range(1, 5) for blk in getattr(self.body, f"stage{s}")]

    def blocks(self) -> list[nn.Module]:
        """The modules activation checkpointing may recompute: the residual blocks."""
        return self.residual_blocks()

    def hidden_widths(self) -> list[int]:
        out = []
        for blk in self.residual_blocks():
            out.append(blk.conv1.out_channels)
            if isinstance(blk, Bottleneck):
                out.append(blk.conv2.out_channels)
        return out

    def inner_layers(self) -> list[tuple[str, str, str, str]]:
        """Per hidden width, in order: (block name, the conv computing it, its BatchNorm, the
        conv reading it), the last three as attribute names in the block."""
        names = {id(m): n for n, m in self.named_modules()}
        out = []
        for blk in self.residual_blocks():
            out.append((names[id(blk)], "conv1", "bn1", "conv2"))
            if isinstance(blk, Bottleneck):
                out.append((names[id(blk)], "conv2", "bn2", "conv3"))
        return out

    def unit_scores(self) -> list[torch.Tensor]:
        """The L1 norm of each inner channel's filter; the residual stream is never scored."""
        return [l1_scores(self.get_submodule(f"{block}.{conv}")) for block, conv, _, _ in self.inner_layers()]

    def keep_units(self, keep: list[torch.Tensor]) -> ResNet:
        """Cut the inside of each block only: the kept channels of conv1/bn1 (and conv2/bn2 of a
        bottleneck) and the matching inputs of the conv that reads them. Stem, the last conv of
        each block, shortcuts and head keep every channel, so the additions still line up."""
        check_keep(keep, self.hidden_widths())
        outputs: dict[str, torch.Tensor] = {}
        inputs: dict[str, torch.Tensor] = {}
        for k, (block, conv, bn, reader) in zip(keep, self.inner_layers()):
            outputs[f"{block}.{conv}"] = outputs[f"{block}.{bn}"] = k
            inputs[f"{block}.{reader}"] = k
        cuts: dict[str, Cut] = {name: (outputs.get(name), inputs.get(name)) for name in {*outputs, *inputs}}
        return self._cut(keep, cuts)


def _narrow_bottleneck(blk: Bottleneck, mid1: int, mid2: int, c_in: int, c_out: int, stride: int) -> None:
    """A pruned bottleneck's two inner widths may differ."""
    blk.conv1 = nn.Conv2d(c_in, mid1, 1, bias=False)
    blk.bn1 = nn.BatchNorm2d(mid1)
    blk.conv2 = nn.Conv2d(mid1, mid2, 3, stride, 1, bias=False)
    blk.bn2 = nn.BatchNorm2d(mid2)
    blk.conv3 = nn.Conv2d(mid2, c_out, 1, bias=False)
