"""Learning rules: constructors returning `Rule(init, step, predict, ...)`, or an
`OptimizerRule` for a rule that steps the optimizer inside its pass."""
from neurokit.rules.base import (EmptyState, LayerwiseOptState, OptimizerRule, Rule, check_batch,
                                 no_extra_params, with_optimizer, zeros_like_tree)
from neurokit.rules.bp import bp
from neurokit.rules.registry import RULES, build, hyperparameters

__all__ = ['EmptyState', 'LayerwiseOptState', 'OptimizerRule', 'RULES', 'Rule', 'bp', 'build',
           'check_batch', 'hyperparameters', 'no_extra_params', 'with_optimizer',
           'zeros_like_tree']
