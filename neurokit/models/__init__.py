"""Pure-function models: `init(key) -> params`, `apply(params, x) -> (logits, activations)`."""
from neurokit.models.cnn import PRESETS as CNN_PRESETS, cnn, preset
from neurokit.models.layers import ACTIVATIONS, INITS, Layer, conv, dense
from neurokit.models.mlp import mlp
from neurokit.models.model import Model, sequential
from neurokit.models.registry import MODELS, build

__all__ = ['ACTIVATIONS', 'CNN_PRESETS', 'INITS', 'Layer', 'MODELS', 'Model', 'build', 'cnn',
           'conv', 'dense', 'mlp', 'preset', 'sequential']
