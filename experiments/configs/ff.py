"""Forward-forward (Hinton 2022): MLP 784-1000-1000, Fashion-MNIST, supervised FF.

Defaults of `neurokit.rules.ff`: SymBa loss on mean goodness (alpha 40), rms
normalisation of every layer's input, the one-hot label in the first 10
pixels, random wrong labels as negatives, prediction by goodness summed over
both hidden layers (10 label-embedded copies in one batch). Adam 1e-3 with
cosine decay, batch 128.

Command:
  python -m experiments.train --config=experiments/configs/ff.py --workdir=/tmp/ff_run

Expected (measured 2026-11-30 on 2 CPU cores, experiments/benchmarks/results/ff.md):
Fashion-MNIST 2x1000, 5 epochs (cosine over them), 3 seeds: 85.61 ± 0.12 % (BP 89.14 ±
0.04 % in the same run); the full 20-epoch run was not measured on the CPU. FF step time
1.40x BP's on the same network (interleaved medians). Digits, MLP 256-256, batch 64,
30 epochs: 0.975 (BP 0.994). MNIST-1D, MLP 512-512, 40 epochs: 0.499 (the label
overwrites 10 of the 40 signal values; `--config.rule_kwargs.mode=class_groups`
0.559; BP 0.665).
The published setting, MLP 4x2000, 60 epochs, 3 seeds (`--config.model.hidden=2000,2000,2000,2000
--config.epochs=60 --config.num_seeds=3`; measured 2026-11-29 on an NVIDIA H200 by `python -m
experiments.benchmarks.ff --parts=wide ...`, 0.29 s per epoch): 89.51 ± 0.15 % and, in a second
run, 89.50 ± 0.09 % (published FF 89.63 %); BP twin 90.19 ± 0.14 %. lr 1e-3 was also the best of
{5e-4, 1e-3, 2e-3} on a validation split (89.69 %).
Other modes:
`--config.rule_kwargs.mode=unsupervised` (hybrid-image negatives + linear
head), `--config.rule_kwargs.predict=head` (one-pass softmax head),
`--config.model.name=cnn` (conv FF with class groups, Scalable FF; cnn 32-64-128
on the first 2,048 Fashion-MNIST images, 1 epoch: 0.607, BP 0.700).
Greedy layer-by-layer training (`--config.rule_kwargs.greedy_steps_per_layer=N`) needs
`--config.layerwise_updates=True` (one optimizer state per layer, so a finished layer stays put).
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'ff'
    config.rule_kwargs = ml_collections.ConfigDict({
        'mode': 'auto', 'goodness': 'mean', 'loss': 'symba', 'alpha': 40.0, 'threshold': 2.0,
        'normalize': 'rms', 'negatives': 'random', 'label_scale': 1.0, 'predict': 'goodness',
        'predict_from': 0, 'greedy_steps_per_layer': 0, 'class_goodness': 'auto',
        'blur_steps': 6})
    config.epochs = 20
    config.optimizer.schedule = 'cosine'
    return config
