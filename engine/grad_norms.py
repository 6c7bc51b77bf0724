"""Per-layer gradient norms (training.gradient_norms): the L2 norm of the gradients of each of
the student's layer groups, taken after the backward pass (unscaled under fp16, averaged across
ranks under DDP) and before the optimiser step. The norms are summed on the device step by step
and read with the other metrics a few times a second, as `grad/<group>`: the mean over the
steps since the last read. They only read the gradients: training is the same with them on.

Layer groups, from the parameters' names (`body.blocks.3.attn.qkv.weight`): the module path up
to and including a number among its first three parts (`body.blocks.3`, `body.stage2.0`,
`body.1`), else its first two parts (`body.embed`, `body.norm`, `head`). Beyond MAX_GROUPS
groups, neighbouring numbered groups of the longest run under one parent are merged in pairs
(`body.blocks.0-1`, then `body.blocks.0-3`) until MAX_GROUPS are left; the names depend on the
architecture alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MAX_GROUPS = 12
PREFIX = "grad/"


@dataclass
class _Group:
    parent: str  # the name, or for a numbered group the path above the number
    first: int | None  # the numbers this group spans (None: not numbered)
    last: int | None
    members: list[int]  # positions of the parameters in the list given

    @property
    def name(self) -> str:
        if self.first is None:
            return self.parent
        number = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{self.parent}.{number}" if self.parent else number


def _key(name: str, numbered: int, plain: int) -> tuple[str, int | None]:
    """(parent, number) of a parameter's group: its module path up to a number among its first
    `numbered` parts, else its first `plain` parts."""
    path = name.split(".")[:-1] or [name]  # a parameter of the model itself: its own group
    for i, part in enumerate(path[:numbered]):
        if part.isdigit():
            return ".".join(path[:i]), int(part)
    return ".".join(path[:plain]), None


def layer_groups(names: list[str], most: int = MAX_GROUPS) -> list[tuple[str, list[int]]]:
    """[(group name, positions of its parameters in `names`)], in the order of the model."""
    for numbered, plain in ((3, 2), (2, 1), (1, 1)):  # finer to coarser
        groups: list[_Group] = []
        index: dict[tuple[str, int | None], _Group] = {}
        for i, name in enumerate(names):
            key = _key(name, numbered, plain)
            if key not in index:
                index[key] = _Group(key[0], key[1], key[1], [])
                groups.append(index[key])
            index[key].members.append(i)
        groups = _merged(groups, most)
        if len(groups) <= most:
            break
    if len(groups) > most:  # many unnumbered modules at the top: the last ones together
        rest = [i for g in groups[most - 1:] for i in g.members]
        groups = groups[:most - 1] + [_Group("rest", None, None, sorted(rest))]
    return [(g.name, g.members) for g in groups]


def _merged(groups: list[_Group], most: int) -> list[_Group]:
    """Pairs of neighbouring numbered groups under one parent merged, the longest run first,
    until at most `most` groups are left (or no run has two groups)."""
    while len(groups) > most:
        runs: list[tuple[int, int]] = []  # [start, end) of groups numbered under one parent
        start = 0
        for i in range(1, len(groups) + 1):
            if i == len(groups) or groups[i].first is None or groups[i - 1].first is None \
                    or groups[i].parent != groups[i - 1].parent:
                if i - start >= 2 and groups[start].first is not None:
                    runs.append((start, i))
                start = i
        if not runs:
            return groups
        a, b = max(runs, key=lambda r: r[1] - r[0])  # the first of the longest
        pairs = [groups[j:min(j + 2, b)] for j in range(a, b, 2)]
        joined = [_Group(p[0].parent, p[0].first, p[-1].last, p[0].members + (p[1].members if len(p) > 1 else []))
                  for p in pairs]
        groups = groups[:a] + joined + groups[b:]
    return groups


class GradNorms:
    """The gradient norms of one model's layer groups, summed on the device: `add` after each
    backward pass, `read` a few times a second."""

    def __init__(self, model: torch.nn.Module, device: torch.device):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        groups = layer_groups([n for n, _ in named])
        self.names = [PREFIX + name for name, _ in groups]
        self.params = [named[i][1] for _, members in groups for i in members]  # group by group
        self.group = torch.tensor([g for g, (_, members) in enumerate(groups) for _ in members], device=device)
        self.sums = torch.zeros(len(groups), device=device)
        self.steps = torch.zeros(len(groups), device=device)  # steps whose norm was finite

    def add(self) -> None:
        """The norms of the gradients as they are now (after the backward pass, unscaled): each
        parameter's in one foreach kernel, then summed in squares per group. A step whose
        gradients overflowed (fp16: the scaler skips it) counts for no group."""
        grads = [p.grad for p in self.params]
        group = self.group
        if any(g is None for g in grads):  # a parameter the loss did not reach this step
            present = [i for i, g in enumerate(grads) if g is not None]
            grads, group = [grads[i] for i in present], group[present]
        squares = self.sums.new_zeros(len(self.sums))
        if grads:
            squares.index_add_(0, group, torch.stack(torch._foreach_norm(grads)).float().square())
        norms = squares.sqrt()
        finite = torch.isfinite(norms)
        self.sums.add_(torch.where(finite, norms, 0.0))
        self.steps.add_(finite.float())

    def read(self) -> dict[str, float]:
        """The mean norm of each group over the steps since the last read (groups without a
        finite one left out), and start again. One host sync."""
        sums, steps = torch.stack([self.sums, self.steps]).tolist()
        self.sums.zero_()
        self.steps.zero_()
        return {name: s / n for name, s, n in zip(self.names, sums, steps) if n > 0}
