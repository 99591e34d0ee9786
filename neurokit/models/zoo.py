"""A model zoo: ResNet, VGG, ViT and a sequence transformer as Flax blocks.

Each builder writes its network as a list of `flax.linen` modules, one per neurokit
block, and hands it to `flax_blocks.from_flax`: rules see every block's output and,
through the block's sites, every Dense/DenseGeneral/Conv inside it.

Normalisation: 'group' is `nn.GroupNorm` with `group_count(C)` groups (the default:
stateless, so every rule trains it), 'layer' is `nn.LayerNorm` over the channels of each
position, 'batch' is `nn.BatchNorm` (PyTorch's momentum 0.1 and epsilon 1e-5; its
statistics are kept by the rules that can: `flax_blocks`), 'none' is nothing. A conv followed by a norm has no bias (the norm's
own bias replaces it), as in the papers' conv + BatchNorm. Parameters and computation
are in `dtype`.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from neurokit.checks import positive_int, positive_ints
from neurokit.models.flax_blocks import from_flax
from neurokit.models.layers import conv_general_dilated
from neurokit.models.model import Model

NORMS = ('group', 'layer', 'batch', 'none')


def group_count(channels: int) -> int:
    """GroupNorm's number of groups for `channels`: the largest divisor of `channels`
    that is at most min(32, channels // 4) (at least 1). Wu & He (2018) use 32 groups;
    at least 4 channels per group keeps narrow layers from becoming per-channel
    (instance) normalisation, which removes each channel's mean contrast."""
    cap = max(1, min(32, channels // 4))
    return max(g for g in range(1, cap + 1) if channels % g == 0)


def _norm(x, kind, dtype):
    """`x` normalised by `kind` (called inside a compact method: the norm is its child)."""
    if kind == 'group':
        return nn.GroupNorm(num_groups=group_count(x.shape[-1]), dtype=dtype,
                            param_dtype=dtype)(x)
    if kind == 'layer':
        return nn.LayerNorm(dtype=dtype, param_dtype=dtype)(x)
    if kind == 'batch':  # PyTorch's defaults; neurokit sets the mode (flax_blocks)
        return nn.BatchNorm(momentum=0.9, epsilon=1e-5, dtype=dtype, param_dtype=dtype)(x)
    return x


def _conv(features, kernel, strides, padding, norm, dtype):
    # an im2col matmul on CPU, XLA's convolution elsewhere (layers.conv_general_dilated)
    return nn.Conv(features, (kernel, kernel), strides=strides, padding=padding,
                   use_bias=norm == 'none', dtype=dtype, param_dtype=dtype,
                   conv_general_dilated=conv_general_dilated)


class ConvNormRelu(nn.Module):
    """`relu(norm(conv3x3(x)))`, `convs` times, then an optional 2x2 max-pool."""
    features: int
    norm: str = 'group'
    convs: int = 1
    pool: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        for _ in range(self.convs):
            x = _conv(self.features, 3, 1, 1, self.norm, self.dtype)(x)
            x = nn.relu(_norm(x, self.norm, self.dtype))
        return nn.max_pool(x, (2, 2), strides=(2, 2)) if self.pool else x


class ResidualBlock(nn.Module):
    """He et al.'s basic block: `relu(branch(x) + shortcut(x))`, with branch
    `norm(conv3x3(relu(norm(conv3x3_stride(x)))))` and shortcut `x`, or
    `norm(conv1x1_stride(x))` where the stride or the width changes."""
    features: int
    strides: int = 1
    norm: str = 'group'
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        h = _conv(self.features, 3, self.strides, 1, self.norm, self.dtype)(x)
        h = nn.relu(_norm(h, self.norm, self.dtype))
        h = _norm(_conv(self.features, 3, 1, 1, self.norm, self.dtype)(h), self.norm, self.dtype)
        if self.strides != 1 or x.shape[-1] != self.features:
            x = _conv(self.features, 1, self.strides, 'VALID', self.norm, self.dtype)(x)
            x = _norm(x, self.norm, self.dtype)
        return nn.relu(h + x)


class PoolDense(nn.Module):
    """Global average pool over the spatial (or sequence) axes, then a dense layer."""
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = x.mean(axis=tuple(range(1, x.ndim - 1)))
        return nn.Dense(self.features, dtype=self.dtype, param_dtype=self.dtype)(x)


class FlattenDense(nn.Module):
    """Flatten, dense, then relu unless `relu` is False (the logits)."""
    features: int
    relu: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.features, dtype=self.dtype, param_dtype=self.dtype)(
            x.reshape(x.shape[0], -1))
        return nn.relu(x) if self.relu else x


class EncoderBlock(nn.Module):
    """A pre-LayerNorm transformer encoder block (Vaswani et al. 2017; pre-LN as in ViT):
    `x + attn(LN(x))`, then `x + MLP(LN(x))` with MLP `Dense(mlp_ratio * dim) -> gelu ->
    Dense(dim)`. Shared by `vit` and `transformer`."""
    heads: int
    mlp_ratio: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        dim, kw = x.shape[-1], dict(dtype=self.dtype, param_dtype=self.dtype)
        h = nn.LayerNorm(**kw)(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, **kw)(h)
        h = nn.gelu(nn.Dense(self.mlp_ratio * dim, **kw)(nn.LayerNorm(**kw)(x)))
        return x + nn.Dense(dim, **kw)(h)


class PatchEmbed(nn.Module):
    """ViT's input: non-overlapping `patch` x `patch` patches, each linearly embedded (a
    conv with stride `patch`), a learned class token first, plus a learned position
    embedding: `(N, H, W, C) -> (N, 1 + HW / patch^2, dim)`."""
    patch: int
    dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        p = self.patch
        x = nn.Conv(self.dim, (p, p), strides=(p, p), padding='VALID', dtype=self.dtype,
                    conv_general_dilated=conv_general_dilated,
                    param_dtype=self.dtype)(x)
        x = x.reshape(x.shape[0], -1, self.dim)
        cls = self.param('cls', nn.initializers.zeros, (1, 1, self.dim), self.dtype)
        x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.dim)).astype(x.dtype),
                             x], axis=1)
        pos = self.param('pos', nn.initializers.normal(0.02), x.shape[1:], self.dtype)
        return x + pos


class StepEmbed(nn.Module):
    """A sequence's input: each step's features (one, for a `(L,)` signal) through a
    shared dense layer, plus a learned position embedding: `(N, L[, C]) -> (N, L, dim)`."""
    dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = x[..., None] if x.ndim == 2 else x
        x = nn.Dense(self.dim, dtype=self.dtype, param_dtype=self.dtype)(x)
        return x + self.param('pos', nn.initializers.normal(0.02), x.shape[1:], self.dtype)


class TokenHead(nn.Module):
    """LayerNorm then dense on the class token (`pool='cls'`) or the mean token ('mean')."""
    features: int
    pool: str = 'cls'
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = x[:, 0] if self.pool == 'cls' else x.mean(axis=1)
        kw = dict(dtype=self.dtype, param_dtype=self.dtype)
        return nn.Dense(self.features, **kw)(nn.LayerNorm(**kw)(x))


def _image_shape(input_shape, where):
    shape = positive_ints(input_shape, 'input_shape', where)
    if len(shape) != 3:
        raise ValueError(f'{where}: input_shape must be (H, W, C), got {shape}; give a '
                         'grey image as (H, W, 1)')
    return shape


def _check_norm(norm, where):
    if norm not in NORMS:
        raise ValueError(f'{where}: norm must be one of {", ".join(NORMS)}, got {norm!r}')


def _encoder_args(dim, depth, heads, mlp_ratio, where):
    """The encoder's sizes as ints; dim must split evenly over the heads."""
    dim, depth, heads, ratio = (positive_int(v, n, where) for v, n in zip(
        (dim, depth, heads, mlp_ratio), ('dim', 'depth', 'heads', 'mlp_ratio')))
    if dim % heads:
        raise ValueError(f'{where}: dim ({dim}) must be a multiple of heads ({heads}); each '
                         'head gets dim / heads features')
    return dim, depth, heads, ratio


def resnet(input_shape, num_classes, depth=8, width=None, norm='group',
           dtype=jnp.float32) -> Model:
    """A ResNet for small images.

    depth = 6n + 2 (8, 14, 20, 32, ...): the CIFAR ResNet of He et al., "Deep Residual
    Learning for Image Recognition" (CVPR 2016), section 4.2: a 3x3 conv stem of width w,
    three stages of n basic blocks of widths w, 2w, 4w (stride 2 at the first block of
    stages 2 and 3, with a 1x1 conv + norm projection shortcut there: the paper's option
    B; its CIFAR nets use option A, a zero-padded identity), global average pool, dense.
    width defaults to 16 (the paper's).

    depth = 18: ResNet-18 (the same paper's Table 1: basic blocks [2, 2, 2, 2] of widths
    w, 2w, 4w, 8w, w = 64 by default) with the 3x3 stride-1 stem and no max-pool that
    CIFAR codes use for 32x32 images; about 11.17M parameters for CIFAR-10.

    Blocks: stem (conv + norm + relu), one per residual block, head (pool + dense).
    """
    where = 'resnet'
    shape = _image_shape(input_shape, where)
    num_classes = positive_int(num_classes, 'num_classes', where)
    depth = positive_int(depth, 'depth', where)
    _check_norm(norm, where)
    if depth == 18:
        w, layout = 64, (2, 2, 2, 2)
    elif depth >= 8 and (depth - 2) % 6 == 0:
        w, layout = 16, ((depth - 2) // 6,) * 3
    else:
        raise ValueError(f'resnet: depth must be 6n + 2 (8, 14, 20, ...; CIFAR ResNet) or 18 '
                         f'(ResNet-18), got {depth}')
    if width is not None:
        w = positive_int(width, 'width', where, ' or None (16, or 64 for depth 18)')
    modules = [ConvNormRelu(w, norm, dtype=dtype)]
    for stage, count in enumerate(layout):
        for i in range(count):
            strides = 2 if stage > 0 and i == 0 else 1
            modules.append(ResidualBlock(w * 2 ** stage, strides, norm, dtype))
    modules.append(PoolDense(num_classes, dtype))
    return from_flax(modules, shape, num_classes, dtype=dtype)


def vgg(input_shape, num_classes, channels=(64, 128, 256), convs_per_stage=1, norm='group',
        dense_width=256, dtype=jnp.float32) -> Model:
    """A VGG-style convnet (Simonyan & Zisserman 2015) with normalisation: per stage,
    (conv3x3 + norm + relu) x convs_per_stage then a 2x2 max-pool; then flatten,
    Dense(dense_width) + relu (none if dense_width is None), Dense(num_classes).

    Blocks: one per conv stage, the hidden dense (if any), the output dense.
    """
    where = 'vgg'
    shape = _image_shape(input_shape, where)
    num_classes = positive_int(num_classes, 'num_classes', where)
    channels = positive_ints(channels, 'channels', where)
    convs = positive_int(convs_per_stage, 'convs_per_stage', where)
    _check_norm(norm, where)
    if not channels:
        raise ValueError('vgg: channels is empty; give one width per conv stage')
    if min(shape[:2]) < 2 ** len(channels):
        raise ValueError(f'vgg: {len(channels)} 2x2 pools need an image of at least '
                         f'{2 ** len(channels)} pixels a side, got {shape}; use fewer stages')
    modules = [ConvNormRelu(c, norm, convs, True, dtype) for c in channels]
    if dense_width is not None:
        modules.append(FlattenDense(positive_int(dense_width, 'dense_width', where,
                                                 ' or None (no hidden dense)'), True, dtype))
    modules.append(FlattenDense(num_classes, False, dtype))
    return from_flax(modules, shape, num_classes, dtype=dtype)


def vgg5(input_shape, num_classes, norm='group', dtype=jnp.float32) -> Model:
    """PCX's VGG-5 (Pinchetti et al., ICLR 2025; liukidar/pcx
    examples/discriminative_experiments/VGG5): conv 128-256-512-512, each conv3x3 -> act
    -> maxpool2, then one linear layer (2x2x512 -> classes for 32x32 inputs). PCX has no
    normalisation: norm='none' is its layout exactly."""
    return vgg(input_shape, num_classes, (128, 256, 512, 512), 1, norm, None, dtype)


def vgg7(input_shape, num_classes, norm='group', dtype=jnp.float32) -> Model:
    """PCX's VGG-7 (same source, VGG7/): six 3x3 convs 128-128-256-256-512-512 and one
    linear layer. Here as three stages of two SAME convs each ending in a 2x2 pool
    (4x4x512 into the linear layer for 32x32); PCX pools after the first conv of each pair
    and pads the second VALID, ending at 1x1x512: same convs, a larger head here."""
    return vgg(input_shape, num_classes, (128, 256, 512), 2, norm, None, dtype)


def vit(input_shape, num_classes, patch=4, dim=64, depth=4, heads=4, mlp_ratio=2,
        dtype=jnp.float32) -> Model:
    """A Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR
    2021), sized for 28x28 images with 4x4 patches: patch embedding (a stride-`patch`
    conv), a learned class token and learned position embeddings; `depth` pre-LN encoder
    blocks (`EncoderBlock`); LayerNorm + dense on the class token (the paper's readout;
    the class token, initialised at zero, gathers every patch through attention).

    Blocks: [embedding, each encoder block, head].
    """
    where = 'vit'
    shape = _image_shape(input_shape, where)
    num_classes = positive_int(num_classes, 'num_classes', where)
    patch = positive_int(patch, 'patch', where)
    dim, depth, heads, ratio = _encoder_args(dim, depth, heads, mlp_ratio, where)
    if shape[0] % patch or shape[1] % patch:
        raise ValueError(f'vit: the image sides {shape[:2]} must be multiples of patch '
                         f'({patch}); pick a patch size that divides them')
    encoder = [EncoderBlock(heads, ratio, dtype) for _ in range(depth)]
    modules = [PatchEmbed(patch, dim, dtype)] + encoder + [TokenHead(num_classes, 'cls', dtype)]
    return from_flax(modules, shape, num_classes, dtype=dtype)


def transformer(input_shape, num_classes, dim=64, depth=2, heads=4, mlp_ratio=2,
                dtype=jnp.float32) -> Model:
    """A small transformer encoder over a sequence (e.g. MNIST-1D's 40-step signals,
    input_shape (40,) or (40, 1)): a per-step dense embedding plus learned position
    embeddings, `depth` pre-LN encoder blocks (`EncoderBlock`, as in `vit`), mean pool
    over steps, LayerNorm + dense.

    Blocks: [embedding, each encoder block, head].
    """
    where = 'transformer'
    shape = positive_ints(input_shape, 'input_shape', where)
    if len(shape) not in (1, 2):
        raise ValueError(f'transformer: input_shape must be (L,) or (L, C), got {shape}')
    num_classes = positive_int(num_classes, 'num_classes', where)
    dim, depth, heads, ratio = _encoder_args(dim, depth, heads, mlp_ratio, where)
    encoder = [EncoderBlock(heads, ratio, dtype) for _ in range(depth)]
    modules = [StepEmbed(dim, dtype)] + encoder + [TokenHead(num_classes, 'mean', dtype)]
    return from_flax(modules, shape, num_classes, dtype=dtype)
