"""The shared number checks (`neurokit.checks`): the contract rule constructors, `optim.make`
and `config.validate` rely on.

A finite real number in range passes; a value that is not a real number (a bool, a string,
None, a list) is a TypeError; NaN, inf or a number out of range is a ValueError; a traced
value (a sweep member) passes unchecked unless it sets a shape; a schedule passes only
where one is allowed. Every message names `where` and the argument.
"""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from neurokit import checks
from neurokit.rules import base

POSITIVE = lambda v: v > 0


# A few representative cases per outcome (one per kind of value), not every kind crossed
# with every check.
@pytest.mark.parametrize('value', [0.5, np.int64(2), np.asarray(0.5),
                                   jnp.asarray(0.5, jnp.bfloat16), 1e308])
def test_finite_numbers_in_range_pass(value):
    checks.check_range('lr', value, POSITIVE, 'a finite number > 0', where='f')
    assert checks.is_number(value) and checks.finite(value)


@pytest.mark.parametrize('value', [True, '0.5', None, 1j, np.asarray([0.5])])
def test_a_non_number_is_a_type_error_naming_where_and_the_argument(value):
    with pytest.raises(TypeError) as e:
        checks.check_range('lr', value, POSITIVE, 'a finite number > 0', where='optim.make')
    msg = str(e.value)
    assert msg.startswith('optim.make: lr must be a finite number > 0, got '), msg
    assert repr(value) in msg and f'({type(value).__name__})' in msg, msg
    assert not checks.finite(value)


@pytest.mark.parametrize('value', [math.nan, jnp.asarray(-jnp.inf), 10 ** 400])
def test_a_non_finite_number_is_a_value_error_even_where_ok_would_pass(value):
    with pytest.raises(ValueError, match=r'^g: x must be a finite number, got '):
        checks.check_range('x', value, lambda v: True, 'a finite number', where='g')
    assert not checks.finite(value)


@pytest.mark.parametrize('value, ok, what', [
    (0.0, POSITIVE, 'a finite number > 0'),
    (1.0, lambda v: 0 <= v < 1, 'in [0, 1)'),
])
def test_out_of_range_is_a_value_error_naming_the_range_and_value(value, ok, what):
    with pytest.raises(ValueError) as e:
        checks.check_range('momentum', value, ok, what, where='optim.make')
    assert str(e.value) == f'optim.make: momentum must be {what}, got {value!r}'


def test_without_where_the_message_starts_with_the_argument():
    with pytest.raises(ValueError, match=r'^alpha must be a finite number > 0, got -1$'):
        checks.check_range('alpha', -1, POSITIVE, 'a finite number > 0')
    checks.check_range('threshold', -3.5)  # the defaults: any finite number


def test_ok_sees_a_float():
    seen = []
    checks.check_range('x', np.int32(3), lambda v: seen.append(v) or True)
    assert seen == [3.0] and type(seen[0]) is float


def test_a_traced_value_passes_unchecked_inside_jit():
    @jax.jit
    def f(lr):
        checks.check_range('lr', lr, POSITIVE, 'a finite number > 0', where='f')
        return lr * 2
    # a concrete -1 or nan is refused; traced, each is used as it is
    assert float(f(-1.0)) == -2.0
    assert math.isnan(float(f(math.nan)))
    got = jax.vmap(f)(jnp.array([-1.0, 0.5]))
    np.testing.assert_array_equal(np.asarray(got), [-2.0, 1.0])


def test_a_traced_value_is_refused_where_it_cannot_be_swept():
    def f(n):
        checks.check_range('steps', n, lambda v: v >= 0, 'an integer >= 0', where='f',
                           cannot_sweep='sets a loop length')
        return n
    with pytest.raises(ValueError, match=r'^f: steps sets a loop length, so it cannot be swept '
                                         'in one program; run one program per value'):
        jax.jit(f)(3)
    assert f(3) == 3  # concrete: checked as a number


def test_a_schedule_passes_only_where_allowed():
    schedule = optax.constant_schedule(0.1)
    checks.check_range('lr', schedule, POSITIVE, 'a finite number > 0 or a schedule',
                       where='optim.make', schedule=True)
    with pytest.raises(TypeError, match=r'^optim\.make: lr must be a finite number > 0, got '):
        checks.check_range('lr', schedule, POSITIVE, 'a finite number > 0', where='optim.make')
    # allowing a schedule does not let a non-number or a bad number through
    with pytest.raises(TypeError):
        checks.check_range('lr', '0.1', POSITIVE, 'a finite number > 0', schedule=True)
    with pytest.raises(ValueError):
        checks.check_range('lr', -0.1, POSITIVE, 'a finite number > 0', schedule=True)


@pytest.mark.parametrize('value, minimum, want', [(0, 0, 0), (2.0, 1, 2), (jnp.asarray(5), 0, 5)])
def test_count_returns_a_whole_number_as_an_int(value, minimum, want):
    got = checks.check_count('ratio', value, minimum)
    assert got == want and type(got) is int


@pytest.mark.parametrize('value, error', [(0, ValueError), (1.5, ValueError),
                                          (math.inf, ValueError), (True, TypeError)])
def test_count_refuses_a_fraction_a_small_number_or_a_non_number(value, error):
    with pytest.raises(error, match=re.escape(f'ratio must be an integer >= 1, got {value!r}')):
        checks.check_count('ratio', value, 1)


def test_count_refuses_a_traced_value_saying_why():
    with pytest.raises(ValueError, match=r'^ratio sets a shape, so it cannot be swept'):
        jax.jit(lambda r: checks.check_count('ratio', r, 1, 'sets a shape'))(2)


def test_rule_code_still_finds_the_checks_in_rules_base():
    assert base.check_range is checks.check_range
    assert base.check_count is checks.check_count
    assert base.finite is checks.finite
