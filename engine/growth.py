"""Student starting weights: grown from a teacher (Net2Net), averaged (FedAvg), or copied.

Net2Net (Chen, Goodfellow, Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer",
ICLR 2016) makes a wider and deeper network that computes exactly the function of a smaller one:

  wider:  hidden unit j of the wide layer copies unit g(j) of the small one (g(j) = j for the
          first units, random for the new ones): W1'[j] = W1[g(j)], b1'[j] = b1[g(j)]; the next
          layer's weights from the copies of unit u are split so they sum to the original:
          W2'[:, j] = W2[:, g(j)] · r_j  with  Σ_{j: g(j)=u} r_j = 1.
          Net2Net splits evenly and adds noise to break the copies' symmetry; here the r_j are
          random shares that sum to 1 exactly, which breaks the symmetry and keeps the function.
  deeper: a new layer after a ReLU starts as the identity, since ReLU(I·h) = h for h ≥ 0.

For convolutional students (engine/growth_conv.py) the units are channels: a wide conv's output
channel j copies channel g(j)'s kernels and its BatchNorm (weight, bias, running mean and var),
and the next conv splits its input kernels by the same shares. In a ResNet everything that writes
into one residual stream (the stem's or a shortcut's conv, every block's last conv and BN) uses
one mapping, since the additions join them channel by channel; each block's inner widths have
their own. Deeper means an identity CNN block (a centred 1 on the kernel's diagonal, BN passing
its input on; only where it adds no pooling) or an extra residual block whose last BN is zeroed,
so it outputs ReLU(x + 0) = x.

So the large student starts out as good as the small teacher and learns on from there.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.growth_conv import GrowthError, grow_cnn, grow_head, grow_resnet, split_shares

CONV = {"cnn": grow_cnn, "resnet": grow_resnet}  # kind → its growth; the MLP's is below


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.body if isinstance(m, nn.Linear)] + [model.head]


@torch.no_grad()
def grow(student: nn.Module, teacher: nn.Module, head_rows: dict[int, int], seed: int = 0) -> None:
    """Make the (wider, deeper) `student` compute what the smaller `teacher` of its kind (mlp,
    cnn or resnet) computes; a student that cannot raises ValueError (GrowthError: with a hint).

    `head_rows` maps student class → teacher output; student classes the teacher does not know
    keep their random rows (the teacher has nothing to say about them)."""
    gen = torch.Generator().manual_seed(seed)
    if type(student) is not type(teacher):
        kinds = [getattr(m, "kind", "") or type(m).__name__ for m in (teacher, student)]
        raise GrowthError(f"a {kinds[0]} teacher cannot grow into a {kinds[1]} student",
                          "give the teacher the student's architecture kind")
    if getattr(student, "kind", "") in CONV:
        student.normalize.load_state_dict(teacher.normalize.state_dict())
        return CONV[student.kind](student, teacher, head_rows, gen)
    small, big = _linears(teacher), _linears(student)
    if len(big) < len(small) or any(b.out_features < s.out_features for s, b in zip(small[:-1], big[:-1])):
        raise ValueError(f"the student ({_shape(student)}) must be at least as wide and deep as "
                         f"the teacher ({_shape(teacher)})")
    student.normalize.load_state_dict(teacher.normalize.state_dict())
    mapping = torch.arange(small[0].in_features)  # which small unit each big input copies
    shares = torch.ones(small[0].in_features)
    hidden = len(small) - 1
    for i in range(hidden):
        s, b = small[i], big[i]
        w = s.weight[:, mapping] * shares  # inputs from copied units, split
        extra = torch.randint(0, s.out_features, (b.out_features - s.out_features,), generator=gen)
        new_mapping = torch.cat([torch.arange(s.out_features), extra])
        b.weight.copy_(w[new_mapping])
        b.bias.copy_(s.bias[new_mapping])
        mapping, shares = new_mapping, split_shares(new_mapping, s.out_features, gen)
    for b in big[hidden:-1]:  # the extra layers: identity on the (widened) features
        if b.weight.shape != (len(mapping), len(mapping)):
            raise ValueError("extra student layers must keep the width of the last grown layer")
        b.weight.copy_(torch.eye(len(mapping)))
        b.bias.zero_()
    grow_head(big[-1], small[-1], mapping, shares, head_rows)


def _shape(model: nn.Module) -> str:
    return "×".join(str(m.out_features) for m in _linears(model)[:-1]) or "no hidden layers"


@torch.no_grad()
def copy_weights(student: nn.Module, state: dict[str, torch.Tensor], head_rows: dict[int, int]) -> list[str]:
    """Copy every tensor whose name and shape match; the head's rows by class. Returns what was
    not copied (shapes differ), so the caller can say so."""
    own = student.state_dict()
    skipped = []
    for name, value in state.items():
        if name.startswith("head."):
            continue
        if name in own and own[name].shape == value.shape:
            own[name].copy_(value)
        else:
            skipped.append(name)
    for row, src in head_rows.items():
        if own["head.weight"].shape[1] == state["head.weight"].shape[1]:
            own["head.weight"][row] = state["head.weight"][src]
            own["head.bias"][row] = state["head.bias"][src]
    return skipped


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """FedAvg's one-shot average of weights and buffers (McMahan et al., AISTATS 2017): the
    plain mean, since each teacher's share of the data is unknown to the engine."""
    return {k: torch.stack([s[k].float() for s in states]).mean(dim=0).to(states[0][k].dtype)
            for k in states[0]}
