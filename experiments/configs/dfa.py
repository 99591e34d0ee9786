"""Direct feedback alignment (Nokland 2016): LeNet, Adam 1e-3 cosine, batch 128, 15 epochs, Fashion-MNIST.

Command:
  python -m experiments.train --config=experiments/configs/dfa.py --workdir=/tmp/runs/dfa \
      --config.num_seeds=3

Expected: LeNet F-MNIST, 3 seeds, cosine decay, mean test accuracy against the BP twin (same
init, data order, optimizer), `python -m experiments.benchmarks.fa --part=accuracy --rules=...`:
- `--config.epochs=50` (2026-11-29, 2-core CPU, 25 min): 87.72 ± 0.54 % (seeds 88.36, 87.76,
  87.05); BP at the same settings 90.70 ± 0.29 % (H200 run). Above BioTorch's DFA (12.81 %
  error, i.e. 87.19 %) and the issue's 87.2 % target.
- 15 epochs (the default budget; 2026-11-29, 2-core CPU, 7 min): 85.34 ± 0.71 % (seeds 86.33,
  85.00, 84.68), BP twin 89.91 ± 0.32 % (2026-11-23): below the target at this budget.

`conv_feedback='channel'` (one feedback weight per conv channel, shared by its positions) was
picked over `'full'` (one per unit, Nokland's definition and the constructor's default) on a
50k/10k split of the training set, 3 seeds x 50 epochs (`python -m experiments.benchmarks.fa
--part=select --epochs=50 --seeds=3`): validation 88.00 % against 86.33 %. With 'full' one seed
in three lagged at 83-85 %: test 87.32 ± 1.73 and 86.60 ± 2.47 % (H200) and 86.93 ± 1.86 %
(CPU) at 50 epochs, 83.42 ± 4.14 % at 15.
"""
import ml_collections

from neurokit.experiment.config import base_config


def get_config():
    config = base_config()
    config.rule = 'dfa'
    config.rule_kwargs = ml_collections.ConfigDict(
        {'loss': 'cross_entropy', 'feedback_scale': 1.0, 'alignment_metrics': False,
         'conv_feedback': 'channel'})
    config.model.name = 'lenet'
    config.epochs = 15
    config.optimizer.schedule = 'cosine'
    return config
