"""What a student architecture costs, worked out without torch (engine/spec.py's `size` methods).

`parameters` counts every trainable tensor exactly (Normalize's mean and std are buffers, not
parameters). `activations` estimates the values autograd keeps per sample for the backward
pass of a training-mode forward: each layer's saved input, each BatchNorm's input, each ReLU's
output (a layer reading a ReLU's output saves that same tensor), max pooling's output and its
indices, dropout's mask. Per-channel statistics and the weights themselves are not counted.

The shape arithmetic mirrors engine/models (mlp.py, cnn.py, resnet.py, vit.py, transformer.py); tests/engine/
test_arch_sizes.py checks the parameters against the built models and the activations against
what torch saves.
"""

from __future__ import annotations

import math

RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
SMALL_STEM_MAX = 64  # ResNet stem "auto": the small stem up to this image side


def mlp(width: int, depth: int, dropout: float, sample_shape: tuple[int, ...], n_classes: int) -> tuple[int, int]:
    params, acts = 0, 0
    w_in = math.prod(sample_shape)
    acts += w_in  # the first layer (or the head) saves the normalised input
    for _ in range(depth):
        params += w_in * width + width
        acts += width * (3 if dropout else 1)  # ReLU output; with dropout, its mask and output too
        w_in = width
    return params + w_in * n_classes + n_classes, acts


def _out(side: int, stride: int) -> int:
    """The side after a 3×3 (padding 1), 1×1 (padding 0), 7×7 (padding 3) convolution or a 3×3
    max pool (padding 1) of this stride: all are floor((side − 1) / stride) + 1."""
    return (side - 1) // stride + 1


def cnn(channels: int, depth: int, dropout: float, sample_shape: tuple[int, ...], n_classes: int) -> tuple[int, int]:
    c_in, h, w = sample_shape
    widths = [min(channels * 2 ** i, 4 * channels) for i in range(depth)]
    params, acts = 0, c_in * h * w  # the first conv saves the normalised input
    for i, c in enumerate(widths):
        params += c_in * c * 9 + 2 * c  # conv (no bias), BatchNorm's weight and bias
        acts += 2 * c * h * w  # BatchNorm's input, ReLU's output
        if min(h, w) >= 4 and i < len(widths) - 1:
            h, w = h // 2, w // 2
            acts += 2 * c * h * w  # max pooling's output and indices
        c_in = c
    if dropout:
        acts += c_in  # the mask (the head saves the dropped features instead of the pooled ones)
    return params + c_in * n_classes + n_classes, acts + c_in


def resnet_stage_channels(width: float) -> list[int]:
    """Channels of the four stages' blocks (inner width for bottlenecks): 64·width, doubling."""
    base = max(4, round(64 * width))
    return [base * 2 ** i for i in range(4)]


def resnet_small_stem(stem: str, sample_shape: tuple[int, ...]) -> bool:
    return stem == "small" or (stem == "auto" and max(sample_shape[1:]) <= SMALL_STEM_MAX)


def resnet(depth: int, width: float, stem: str, dropout: float, sample_shape: tuple[int, ...],
           n_classes: int) -> tuple[int, int]:
    c_in, h, w = sample_shape
    channels = resnet_stage_channels(width)
    c = channels[0]
    acts = c_in * h * w  # the stem's conv saves the normalised input
    if resnet_small_stem(stem, sample_shape):
        params = c_in * c * 9 + 2 * c
        acts += 2 * c * h * w  # BatchNorm's input, ReLU's output
    else:
        params = c_in * c * 49 + 2 * c
        h, w = _out(h, 2), _out(w, 2)
        acts += 2 * c * h * w
        h, w = _out(h, 2), _out(w, 2)
        acts += 2 * c * h * w  # max pooling's output and indices
    bottleneck = depth == 50
    for s, (n_blocks, mid) in enumerate(zip(RESNET_BLOCKS[depth], channels)):
        c_out = mid * (4 if bottleneck else 1)
        for b in range(n_blocks):
            stride = 2 if s > 0 and b == 0 else 1
            h2, w2 = _out(h, stride), _out(w, stride)
            if bottleneck:  # 1×1 at the input's resolution, 3×3 with the stride, 1×1 out
                params += c * mid + mid * mid * 9 + mid * c_out + 4 * mid + 2 * c_out
                acts += 2 * mid * h * w + 2 * mid * h2 * w2
            else:
                params += c * mid * 9 + mid * c_out * 9 + 2 * mid + 2 * c_out
                acts += 2 * mid * h2 * w2
            acts += 2 * c_out * h2 * w2  # the last BatchNorm's input, the block's ReLU output
            if stride != 1 or c != c_out:  # the projection shortcut: 1×1 conv and BatchNorm
                params += c * c_out + 2 * c_out
                acts += c_out * h2 * w2
            c, h, w = c_out, h2, w2
    acts += c  # the head saves the pooled features
    if dropout:
        acts += c  # the mask (the head saves the dropped features instead of the pooled ones)
    return params + c * n_classes + n_classes, acts


def mlp_width(dim: int, mlp_ratio: float) -> int:
    """Hidden units of each transformer block's MLP (ViT and token transformer), unpruned."""
    return max(1, round(dim * mlp_ratio))


def transformer(tokens: int, dim: int, depth: int, heads: int, mlp_ratio: float, dropout: float,
                n_classes: int, embedding_params: int, input_values: int) -> tuple[int, int]:
    """A ViT or token transformer (engine/models/attention.py): `depth` pre-norm blocks over
    `tokens` tokens, the final LayerNorm and the head, plus the embedding's parameters and the
    values its input step keeps (`input_values`). Each block keeps: its
    LayerNorms' inputs (2·T·D, and 2·T statistics each), the q/k/v input and q, k, v (4·T·D),
    the attention output, its copy into the projection and the MLP input (3·T·D), the GELU
    input and the fc2 input (2·T·hidden) and the attention's log-sum-exp (heads·T); dropout
    adds its masks and the attention probabilities."""
    hidden = mlp_width(dim, mlp_ratio)
    block_params = 2 * dim + (dim * 3 * dim + 3 * dim) + (dim * dim + dim) + 2 * dim \
        + (dim * hidden + hidden) + (hidden * dim + dim)
    parameters = embedding_params + depth * block_params + 2 * dim + dim * n_classes + n_classes
    t, d = tokens, dim
    per_block = 9 * t * d + 2 * t * hidden + 4 * t + heads * t
    if dropout:
        per_block += 2 * heads * t * t + 2 * t * d + t * hidden
    activations = input_values + depth * per_block + t * d + 2 * t + d
    return parameters, activations

