"""Attribution: which parts of a sample an answer rests on, for the student and for each teacher.

Notation: f_c(x) the logit of class c for one raw sample x (students take raw samples and
normalise them in their first module, so every baseline below is a raw sample); x' a baseline.

- Integrated gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks",
  ICML 2017):  IG_i(x) = (x_i − x'_i) · ∫₀¹ ∂f_c(x' + α(x − x')) / ∂x_i dα,  the integral by
  Gauss–Legendre quadrature over `steps` points (Captum). Completeness: Σ_i IG_i = f_c(x) − f_c(x')
  (up to the quadrature error). Baseline x' = 0 for images, tables and vectors. For text (the
  token transformer) the path runs in the token-embedding space (Captum's
  LayerIntegratedGradients on `body.tokens`): from the embeddings of the padding id at every
  position to the real tokens' embeddings, while attention and pooling keep the sample's real
  padding mask (its real length); a token's score is the sum of its embedding's attributions.
- Saliency (Simonyan, Vedaldi, Zisserman, "Deep Inside Convolutional Networks", ICLR 2014
  workshop): |∂f_c / ∂x_i|; for images the maximum over the channels, as the paper does; for
  text the L2 norm of the gradient with respect to the token's embedding. Gradients saturate
  (a LayerNorm makes the output blind to an embedding's scale), which IG's path avoids: IG is
  the default.
- Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020):
  per block l, Â_l = rownorm(mean_heads(A_l) + I), R = Â_L · … · Â_1; how much each input
  token flows into the pooled output (the class token's row, or the mean of the rows).
- Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV
  2014) for teachers' images and feature ablation for their tables and vectors:
  f_c(x) − f_c(x with a window / one feature set to 0), averaged over the windows covering a
  pixel. It needs only the teacher's outputs, so it works for ONNX teachers too.

Shapes returned (float32): images [N, H, W] — the student's IG is Σ_channels |IG| (a map of
where evidence lies, either sign), its saliency the max over channels of |gradient|, a teacher's
occlusion |Δ| (its window spans all channels); tables and vectors [N, F] (F the flattened
sample), signed for IG and occlusion; text [N, T] signed for IG, 0 at padding.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

METHODS = ("integrated gradients", "saliency")
KINDS = ("image", "text", "table", "vector")


@contextmanager
def _frozen(model: nn.Module):
    """The model in eval mode (dropout off, BatchNorm on its running statistics) with no
    gradients kept for its parameters; both restored afterwards."""
    was_training = model.training
    wanted = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in wanted:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield model
    finally:
        for p, flag in wanted:
            p.requires_grad_(flag)
        model.train(was_training)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _pad_id(model: nn.Module, pad_id: int | None) -> int | None:
    if pad_id is not None:
        return int(pad_id)
    body = getattr(model, "body", None)
    pad = getattr(body, "pad_id", None)
    return int(pad) if pad is not None else None


def _token_embedding(model: nn.Module) -> nn.Embedding | None:
    """The token embedding of a text student (`body.tokens` of the transformer), else the first
    embedding in the model, or None."""
    tokens = getattr(getattr(model, "body", None), "tokens", None)
    if isinstance(tokens, nn.Embedding):
        return tokens
    return next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)


def student_attribution(model: nn.Module, x: torch.Tensor, target: torch.Tensor, kind: str,
                        pad_id: int | None = None, steps: int = 32, method: str = "integrated gradients",
                        batch_size: int = 512) -> np.ndarray:
    """The student's attribution of its logit `target[n]` to the parts of each raw sample `x[n]`
    (see the module docstring for the methods and shapes): [N, H, W] for images ([N, C, H, W]
    samples), [N, T] for text (token ids [N, T]; 0 at padding, `pad_id` defaulting to the
    model's), [N, F] otherwise. `batch_size`: the most samples (× steps) one forward pass takes.
    The model is left as it was (mode, no gradients on its parameters)."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; use one of {METHODS}")
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; use one of {KINDS}")
    device = _device(model)
    x = torch.as_tensor(x).to(device=device, dtype=torch.float32)
    target = torch.as_tensor(target).to(device=device, dtype=torch.long).reshape(-1)
    if len(target) != len(x):
        raise ValueError(f"{len(target)} targets for {len(x)} samples")
    per = max(1, batch_size // steps) if method == "integrated gradients" else max(1, batch_size)
    outs = []
    with _frozen(model):
        for i in range(0, len(x), per):
            outs.append(_attribute(model, x[i:i + per], target[i:i + per], kind, pad_id, steps, method))
    if not outs:
        shape = {"image": tuple(x.shape[2:]), "text": tuple(x.shape[1:2])}.get(kind, (math.prod(x.shape[1:]),))
        return np.zeros((0, *shape), np.float32)
    return np.concatenate(outs).astype(np.float32)


def _attribute(model, x, target, kind, pad_id, steps, method) -> np.ndarray:
    from captum.attr import IntegratedGradients, LayerGradientXActivation, LayerIntegratedGradients, Saliency

    if kind == "text":
        pad = _pad_id(model, pad_id)
        embedding = _token_embedding(model)
        baseline = torch.full_like(x, float(pad if pad is not None else 0))
        if embedding is None:  # a text student without an embedding (an MLP on ids): the ids themselves
            if method == "saliency":
                per_token = Saliency(model).attribute(x, target=target).reshape(len(x), -1)
            else:
                per_token = IntegratedGradients(model).attribute(x, baselines=baseline, target=target,
                                                                 n_steps=steps).reshape(len(x), -1)
        elif method == "saliency":
            grad = LayerGradientXActivation(model, embedding, multiply_by_inputs=False).attribute(x, target=target)
            per_token = grad.norm(dim=-1)
        else:
            lig = LayerIntegratedGradients(model, embedding)
            per_token = lig.attribute(x, baselines=baseline, target=target, n_steps=steps).sum(dim=-1)
        if pad is not None:
            per_token = per_token * (x != pad).to(per_token.dtype)
        return per_token.detach().cpu().numpy()
    if method == "saliency":
        attr = Saliency(model).attribute(x.clone().requires_grad_(True), target=target, abs=True)
    else:
        attr = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=steps)
    attr = attr.detach()
    if kind == "image" and attr.ndim == 4:
        reduced = attr.amax(dim=1) if method == "saliency" else attr.abs().sum(dim=1)
    else:
        reduced = attr.reshape(len(attr), -1)
    return reduced.cpu().numpy()


# ── attention ────────────────────────────────────────────────────────────────────────────────


def _attention_parts(model: nn.Module):
    """(body, "vit" | "text") for the students whose blocks hold an `Attention`, else None."""
    from engine.models.transformer import TokenBody
    from engine.models.vit import VitBody

    body = getattr(model, "body", None)
    if isinstance(body, VitBody):
        return body, "vit"
    if isinstance(body, TokenBody):
        return body, "text"
    return None


def attention_weights(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor] | None:
    """Each block's attention probabilities [N, heads, T, T] for the raw samples `x` (ViT and
    transformer students; None for others), recomputed as softmax(q kᵀ / √d) with the key mask the
    block was given, from q and k captured by forward hooks on `attn.qkv` (the attention itself
    runs in scaled_dot_product_attention, which returns no weights). The model's forward is not
    changed; it runs once in eval mode, and its mode is restored."""
    parts = _attention_parts(model)
    return None if parts is None else list(_block_weights(model, parts[0], x))


@torch.no_grad()
def _block_weights(model: nn.Module, body: nn.Module, x: torch.Tensor):
    """`attention_weights`, one block at a time (first block first), so a rollout holds one
    block's [N, heads, T, T] at a time."""
    qkv_out: list[torch.Tensor] = []
    masks: list[torch.Tensor | None] = []

    def keep_mask(_module, args, kwargs):
        masks.append(args[1] if len(args) > 1 else kwargs.get("mask"))

    def keep_qkv(_module, _inputs, output):
        qkv_out.append(output.detach())

    hooks = []
    for block in body.blocks:
        hooks.append(block.attn.register_forward_pre_hook(keep_mask, with_kwargs=True))
        hooks.append(block.attn.qkv.register_forward_hook(keep_qkv))
    was_training = model.training
    try:
        model.eval()
        model(torch.as_tensor(x).to(device=_device(model), dtype=torch.float32))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    for block, qkv, mask in zip(body.blocks, qkv_out, masks):
        a = block.attn
        n, t = qkv.shape[0], qkv.shape[1]
        q, k, _ = qkv.float().reshape(n, t, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(a.head_dim)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        yield scores.softmax(dim=-1)


def rollout(weights) -> torch.Tensor:
    """Attention rollout [N, T, T] from each block's weights [N, heads, T, T] (an iterable, first
    block first): R = Â_L · … · Â_1 with Â = rownorm(mean_heads(A) + I) (Abnar & Zuidema, 2020)."""
    r = None
    for w in weights:
        a = w.mean(dim=1) + torch.eye(w.shape[-1], device=w.device)
        a = a / a.sum(dim=-1, keepdim=True)
        r = a if r is None else a @ r
    if r is None:
        raise ValueError("a rollout needs the weights of at least one block")
    return r


def attention_map(model: nn.Module, x: torch.Tensor, pad_id: int | None = None) -> np.ndarray | None:
    """Attention rollout to the input, float32: for a ViT [N, H, W] (the class token's row for cls
    pooling, the mean of all rows for mean pooling; per patch, each patch's value over its pixels,
    nearest upsampling); for the token transformer [N, T] (the first token's row for cls pooling,
    the mean of the non-padding rows for mean pooling; 0 at padding, `pad_id` defaulting to the
    model's). None for other architectures. Rows of the rollout sum to 1, so the values are
    shares of the flow (a ViT's cls row leaves out the class token's own share)."""
    parts = _attention_parts(model)
    if parts is None:
        return None
    body, family = parts
    x = torch.as_tensor(x)
    r = rollout(_block_weights(model, body, x))
    if family == "vit":
        flow = r[:, 0, 1:] if body.pooling == "cls" else r.mean(dim=1)
        h, w = x.shape[-2:]
        patch = body.embed.proj.kernel_size
        grid = flow.reshape(len(flow), 1, h // patch[0], w // patch[1])
        return F.interpolate(grid, size=(h, w), mode="nearest")[:, 0].cpu().numpy().astype(np.float32)
    pad = _pad_id(model, pad_id)
    ids = x.to(r.device)
    keep = (ids != pad) if pad is not None else torch.ones_like(ids, dtype=torch.bool)
    keep_f = keep.to(r.dtype)
    if body.pooling == "cls":
        flow = r[:, 0, :]
    else:
        flow = (r * keep_f[:, :, None]).sum(dim=1) / keep_f.sum(dim=1, keepdim=True).clamp(min=1)
    return (flow * keep_f).cpu().numpy().astype(np.float32)


# ── teachers ─────────────────────────────────────────────────────────────────────────────────


def occlusion_window(height: int, width: int) -> int:
    """The side of the square occlusion window for images of height × width: an eighth of the
    shorter side (at least 1 pixel): 1 for 8×8 digits, 4 for 28×28, 28 for 224×224."""
    return max(1, min(height, width, round(min(height, width) / 8)))


def _stride(side: int, window: int) -> int:
    """About half the window, dividing what the window leaves of the side, so the windows cover
    the image to its last pixel."""
    rest = side - window
    for s in range(max(1, window // 2), 0, -1):
        if rest % s == 0:
            return s
    return 1


def teacher_attribution(teacher, x_raw: np.ndarray, target_student_class: int, kind: str,
                        window: int | None = None, batch_size: int = 1024) -> np.ndarray | None:
    """A teacher's perturbation attribution for the student class `target_student_class` (its
    own output for that class), from its `predict` alone (any teacher, ONNX included): occlusion
    with a zero square window (`window` pixels; default `occlusion_window`) for images, [N, H, W]
    (|Δ|); zeroing each feature for tables and vectors, [N, F] (signed). None for text, or when
    the teacher does not know the class. `batch_size`: the most perturbed samples per call."""
    from captum.attr import FeatureAblation, Occlusion

    if kind == "text":
        return None
    own = np.flatnonzero(np.asarray(teacher.student_index) == int(target_student_class))
    if own.size == 0:
        return None
    target = int(own[0])
    x = torch.from_numpy(np.ascontiguousarray(x_raw, dtype=np.float32))
    n = len(x)

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(teacher.predict(inputs.detach().cpu().numpy(), batch_size))

    per_eval = max(1, batch_size // max(1, n))
    if kind == "image" and x.ndim == 4:
        c, h, w = x.shape[1:]
        side = occlusion_window(h, w) if window is None else max(1, min(int(window), h, w))
        attr = Occlusion(forward).attribute(x, sliding_window_shapes=(c, side, side),
                                            strides=(c, _stride(h, side), _stride(w, side)),
                                            baselines=0.0, target=target, perturbations_per_eval=per_eval)
        return attr.abs().mean(dim=1).numpy().astype(np.float32)
    attr = FeatureAblation(forward).attribute(x, baselines=0.0, target=target, perturbations_per_eval=per_eval)
    return attr.reshape(n, -1).numpy().astype(np.float32)


# ── showing ──────────────────────────────────────────────────────────────────────────────────


def display_image(sample: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """One raw image sample ([C, H, W], or [H, W]) as the user sees it: float32 [H, W, 3] in 0…1.
    Grey (and two-channel) images become three equal channels, RGBA loses its alpha.
    `value_range`: the data's (lowest, highest) value (scikit-learn's digits: 0…16), mapped to
    black…white; without it, values already in 0…1 stay, 0…255 are divided by 255, anything
    else is min–max scaled per image."""
    a = np.nan_to_num(np.asarray(sample, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"an image sample is [C, H, W]; got shape {list(a.shape)}")
    c = a.shape[0]
    a = a[:3] if c in (3, 4) else np.repeat(a.mean(axis=0, keepdims=True), 3, axis=0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if value_range is not None and value_range[1] > value_range[0]:
        a = (a - value_range[0]) / (value_range[1] - value_range[0])
    elif lo >= 0 and hi <= 1:
        pass
    elif lo >= 0 and hi <= 255:
        a = a / 255
    else:
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.clip(a.transpose(1, 2, 0), 0, 1).astype(np.float32)
