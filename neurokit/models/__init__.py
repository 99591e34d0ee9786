"""Pure-function models: `init(key) -> params`, `apply(params, x) -> (logits, activations)`."""
from neurokit.models.cnn import PRESETS as CNN_PRESETS, cnn, preset
from neurokit.models.flax_blocks import FlaxBlock, from_flax, from_linen, from_nnx
from neurokit.models.gains import block_gains
from neurokit.models.layers import ACTIVATIONS, INITS, Layer, Site, conv, dense
from neurokit.models.mlp import mlp
from neurokit.models.model import (Model, call_block, hooked_block, is_stateful, sequential,
                                   stats_pass, with_stats)
from neurokit.models.registry import MODELS, build

__all__ = ['ACTIVATIONS', 'CNN_PRESETS', 'FlaxBlock', 'INITS', 'Layer', 'MODELS', 'Model', 'Site',
           'block_gains', 'build', 'call_block', 'cnn', 'conv', 'dense', 'from_flax',
           'from_linen', 'from_nnx', 'hooked_block', 'is_stateful', 'mlp', 'preset',
           'sequential', 'stats_pass', 'with_stats']
