"""Net2Net growth for convolutional students: the CNN and the ResNet (see engine/growth.py).

Wider, for convolutions: output channel j of a wide conv copies channel g(j) of the small one
(its kernels W'[j] = W[g(j)], and its BatchNorm's weight, bias, running mean and running var),
and the next conv's (or the head's) input kernels from the copies of channel u are split with
shares that sum to 1: W2'[:, j] = W2[:, g(j)] · r_j. ReLU, pooling and BN in eval mode act on
each channel alone, so every copy carries exactly its original.

In a ResNet the additions y = ReLU(shortcut(x) + F(x)) join tensors channel by channel, so all
that write into one residual stream (the stem's conv, or a stage's shortcut conv, and the last
conv + BN of every block on that stream) share ONE mapping g; each block's inner widths get
their own. Deeper: an extra block in a stage starts with its last BN zeroed (weight and bias),
so F(x) = 0 and the block outputs ReLU(x) = x (x ≥ 0: it comes out of a ReLU). An extra CNN
block starts as the identity: a centred 1 on the kernel's diagonal and a BN that passes its
input on ((x − 0)/√(1 − eps + eps) · 1 + 0 = x); its pooling must match the teacher's.
"""

from __future__ import annotations

import torch
from torch import nn


class GrowthError(ValueError):
    """A student that cannot start as its teacher; `hint` says how to fix the spec."""

    def __init__(self, message: str, hint: str = "make the student at least as wide and deep as "
                 "the teacher it grows from"):
        super().__init__(message)
        self.hint = hint


def grow_cnn(student: nn.Module, teacher: nn.Module, head_rows: dict[int, int], gen: torch.Generator) -> None:
    small, big = _conv_blocks(teacher), _conv_blocks(student)
    if len(big) < len(small):
        raise GrowthError(f"the student CNN has {len(big)} conv blocks, fewer than the teacher's {len(small)}")
    pools_t, pools_s = _pools(teacher), _pools(student)
    if pools_t != pools_s:
        deep = _most_pools(student.sample_shape) + 1
        raise GrowthError(
            f"the {len(big)}-block student CNN halves the map {_times(len(pools_s))}, the {len(small)}-block "
            f"teacher {_times(len(pools_t))} (a CNN max-pools after every block but the last while the map "
            "is at least 4 wide), so the student's extra blocks cannot start as the identity",
            f"give the student the teacher's depth ({len(small)}), or grow from a teacher of depth "
            f"{deep} or more: its last block sees a map under 4 wide, so blocks after it add no pooling")
    last = small[-1][0].out_channels
    small += [_identity_block(last, b_conv, b_bn) for b_conv, b_bn in big[len(small):]]
    mapping, shares = torch.arange(student.sample_shape[0]), torch.ones(student.sample_shape[0])
    for i, ((s_conv, s_bn), (b_conv, b_bn)) in enumerate(zip(small, big)):
        out = _new_mapping(f"conv block {i + 1}", s_conv.out_channels, b_conv.out_channels, gen)
        _grow_conv(b_conv, s_conv, mapping, shares, out)
        _copy_bn(b_bn, s_bn, out)
        mapping, shares = out, split_shares(out, s_conv.out_channels, gen)
    grow_head(student.head, teacher.head, mapping, shares, head_rows)


def grow_resnet(student: nn.Module, teacher: nn.Module, head_rows: dict[int, int], gen: torch.Generator) -> None:
    t_blocks, s_blocks = teacher.residual_blocks(), student.residual_blocks()
    if type(t_blocks[0]) is not type(s_blocks[0]):
        raise GrowthError(
            f"a ResNet-{teacher.arch.depth} cannot grow into a ResNet-{student.arch.depth}: depth 50 "
            "has bottleneck blocks, 18 and 34 basic blocks, and neither becomes the other",
            "grow a depth-50 student from a depth-50 teacher, and an 18 or 34 from an 18 or 34")
    t_stem, s_stem = teacher.body.stem, student.body.stem
    if len(t_stem) != len(s_stem) or t_stem[0].kernel_size != s_stem[0].kernel_size:
        raise GrowthError("the student's stem differs from the teacher's (small: a 3×3 conv; imagenet: "
                          "a 7×7 stride-2 conv and max pooling)", "give the student the teacher's `stem`")
    stream = _new_mapping("body.stem.0", t_stem[0].out_channels, s_stem[0].out_channels, gen)
    _grow_conv(s_stem[0], t_stem[0], torch.arange(s_stem[0].in_channels), torch.ones(s_stem[0].in_channels), stream)
    _copy_bn(s_stem[1], t_stem[1], stream)
    x = stream, split_shares(stream, t_stem[0].out_channels, gen)
    for s in range(1, 5):
        name = f"body.stage{s}"
        small, big = getattr(teacher.body, f"stage{s}"), getattr(student.body, f"stage{s}")
        if len(big) < len(small):
            raise GrowthError(f"the student's {name} has {len(big)} blocks, fewer than the teacher's {len(small)}")
        for b, (s_blk, b_blk) in enumerate(zip(small, big)):
            x = _grow_block(f"{name}.{b}", b_blk, s_blk, x, gen)
        for b_blk in big[len(small):]:  # extra blocks: F(x) = 0, so ReLU(x + 0) = x
            last_bn = b_blk.bn3 if hasattr(b_blk, "bn3") else b_blk.bn2
            last_bn.weight.zero_()
            last_bn.bias.zero_()
    grow_head(student.head, teacher.head, *x, head_rows)


def _grow_block(name: str, big: nn.Module, small: nn.Module, x: tuple[torch.Tensor, torch.Tensor],
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Grow one residual block reading the stream x = (mapping, shares); returns the stream it
    writes: the same one through an identity shortcut, a new one through a shortcut conv."""
    if isinstance(small.shortcut, nn.Identity) != isinstance(big.shortcut, nn.Identity):
        raise GrowthError(f"the student's {name} has a different shortcut from the teacher's "
                          "(one adds its input, the other a 1×1 conv of it)")
    if isinstance(small.shortcut, nn.Identity):
        out = x
    else:
        t_sc, s_sc = small.shortcut, big.shortcut
        mapping = _new_mapping(f"{name}.shortcut", t_sc[0].out_channels, s_sc[0].out_channels, gen)
        _grow_conv(s_sc[0], t_sc[0], *x, mapping)
        _copy_bn(s_sc[1], t_sc[1], mapping)
        out = mapping, split_shares(mapping, t_sc[0].out_channels, gen)
    layers = ["1", "2", "3"] if hasattr(small, "conv3") else ["1", "2"]
    inner = x
    for k in layers[:-1]:
        s_conv, b_conv = getattr(small, "conv" + k), getattr(big, "conv" + k)
        mapping = _new_mapping(f"{name}.conv{k}", s_conv.out_channels, b_conv.out_channels, gen)
        _grow_conv(b_conv, s_conv, *inner, mapping)
        _copy_bn(getattr(big, "bn" + k), getattr(small, "bn" + k), mapping)
        inner = mapping, split_shares(mapping, s_conv.out_channels, gen)
    k = layers[-1]
    _grow_conv(getattr(big, "conv" + k), getattr(small, "conv" + k), *inner, out[0])
    _copy_bn(getattr(big, "bn" + k), getattr(small, "bn" + k), out[0])
    return out


def _grow_conv(big: nn.Conv2d, small: nn.Conv2d, mapping: torch.Tensor, shares: torch.Tensor,
               out: torch.Tensor) -> None:
    """W'[j, i] = W[g(j), g_in(i)] · r_i: output channels copied, input channels split."""
    w = small.weight[:, mapping] * shares.view(1, -1, 1, 1)
    big.weight.copy_(w[out])
    if big.bias is not None:
        big.bias.copy_(small.bias[out])


def _copy_bn(big: nn.BatchNorm2d, small: nn.BatchNorm2d, out: torch.Tensor) -> None:
    for key in ("weight", "bias", "running_mean", "running_var"):
        getattr(big, key).copy_(getattr(small, key)[out])
    big.num_batches_tracked.copy_(small.num_batches_tracked)


def grow_head(big: nn.Linear, small: nn.Linear, mapping: torch.Tensor, shares: torch.Tensor,
              head_rows: dict[int, int]) -> None:
    """The head's rows by class, its inputs from copied units split; student classes the teacher
    does not know keep their random rows."""
    w = small.weight[:, mapping] * shares
    for row, src in head_rows.items():
        big.weight[row] = w[src]
        big.bias[row] = small.bias[src]


def _new_mapping(name: str, small: int, big: int, gen: torch.Generator) -> torch.Tensor:
    """g: the first channels copy themselves, the new ones a random old one each."""
    if big < small:
        raise GrowthError(f"the student's {name} has {big} channels, fewer than the teacher's {small}")
    return torch.cat([torch.arange(small), torch.randint(0, small, (big - small,), generator=gen)])


def split_shares(mapping: torch.Tensor, units: int, gen: torch.Generator) -> torch.Tensor:
    """Random positive shares r_j, summing to 1 over the copies of each unit."""
    r = torch.rand(len(mapping), generator=gen) + 0.5
    total = torch.zeros(units).index_add_(0, mapping, r)
    return r / total[mapping]


def _conv_blocks(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.body if isinstance(m, nn.BatchNorm2d)]
    return list(zip(convs, bns))


def _pools(model: nn.Module) -> list[int]:
    """After which conv blocks (by index) the CNN max-pools."""
    out, block = [], -1
    for m in model.body:
        block += isinstance(m, nn.Conv2d)
        if isinstance(m, nn.MaxPool2d):
            out.append(block)
    return out


def _most_pools(sample_shape: tuple[int, ...]) -> int:
    """How often a CNN deep enough halves maps of this size (as engine/models/cnn.py does)."""
    h, w, n = sample_shape[1], sample_shape[2], 0
    while min(h, w) >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return n


def _times(n: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{n} times")


def _identity_block(channels: int, like_conv: nn.Conv2d, like_bn: nn.BatchNorm2d) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A teacher block that passes its input on: ReLU(BN(I ∗ x)) = x for x ≥ 0."""
    k = like_conv.kernel_size
    conv = nn.Conv2d(channels, channels, k, padding=like_conv.padding, bias=False)
    conv.weight.zero_()
    conv.weight[torch.arange(channels), torch.arange(channels), k[0] // 2, k[1] // 2] = 1.0
    bn = nn.BatchNorm2d(channels, eps=like_bn.eps)
    bn.running_var.fill_(1.0 - like_bn.eps)
    return conv, bn
