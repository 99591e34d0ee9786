"""Learning rules: constructors returning `Rule(init, step, predict, ...)`."""
from neurokit.rules.base import EmptyState, Rule, check_batch, no_extra_params, zeros_like_tree
from neurokit.rules.bp import bp
from neurokit.rules.registry import RULES, build, hyperparameters

__all__ = ['EmptyState', 'RULES', 'Rule', 'bp', 'build', 'check_batch', 'hyperparameters',
           'no_extra_params',
           'zeros_like_tree']
