"""Counted matmul FLOPs of a JAX function: the bound a step's time is compared with.

`matmul_flops(fn, *args)` compiles `fn` for the CPU (whatever the default device) and
counts, in XLA's optimised program, `2 * (output size) * (contracted size)` for every
`dot` and, for every convolution, `2 * (output size) * (kernel taps x input channels per
group)`, each counted as often as it runs: a loop's body times its trip count, the larger
branch of a conditional, a fused or called computation once per call.

The count is taken after XLA's optimisations, so a matmul the program as written repeats
(a forward pass a rule's metrics recompute, say) or never uses is counted once or not at
all: it is the work the step cannot avoid. XLA's own cost analysis of a program counts a
loop's body once (an equilibrium-propagation step's 70 relaxation steps as one), and on a
GPU leaves out the matmuls it hands to cuBLAS; this counts the program on the CPU backend,
where every matmul stays an HLO `dot`. Elementwise work is not counted.
"""
from __future__ import annotations

import functools
import math
import re

import jax

_HEADER = re.compile(r'^(?:ENTRY )?%([\w.\-]+) \((.*)\) -> .*\{$')
_ARRAY = re.compile(r'([\w.\-]+): \w+\[([\d,]*)\]')
_CALLS = re.compile(r'\b(calls|to_apply|body|condition|true_computation|false_computation)='
                    r'%([\w.\-]+)')
_BRANCHES = re.compile(r'branch_computations=\{([^}]*)\}')
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


def matmul_flops(fn, *args, **kwargs) -> int:
    """FLOPs of the matmuls and convolutions `fn(*args, **kwargs)` runs (see the module
    docstring); the arguments are copied to the CPU to compile there.

    Raises:
      ValueError: the program has a loop whose trip count XLA cannot tell (a `while_loop`
        on traced bounds): write it with `lax.scan` or `fori_loop` with static bounds.
    """
    cpu = jax.devices('cpu')[0]
    args, kwargs = jax.device_put((args, kwargs), cpu)
    return count_hlo(jax.jit(fn).lower(*args, **kwargs).compile().as_text())


def count_hlo(text: str) -> int:
    """The matmul FLOPs of an optimised HLO module's text (`compiled.as_text()`)."""
    shapes, comps, entry, current = {}, {}, None, None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = header.group(1)
            comps[current] = []
            entry = current if line.startswith('ENTRY') else entry
            for name, dims in _ARRAY.findall(header.group(2)):
                shapes[name] = _dims(dims)
            continue
        if current is None or ' = ' not in line:
            continue
        instr = _instruction(line)
        if instr:
            shapes[instr[0]] = instr[1]
            comps[current].append(instr)

    @functools.lru_cache(maxsize=None)
    def flops(comp):
        total = 0
        for name, out, op, operands, attrs in comps[comp]:
            if op == 'dot':
                lhs = shapes[operands[0]]
                contract = _ints(re.search(r'lhs_contracting_dims=\{([\d,]*)\}', attrs).group(1))
                total += 2 * math.prod(out) * math.prod(lhs[i] for i in contract)
            elif op == 'convolution':
                rhs = shapes[operands[1]]
                labels = re.search(r'dim_labels=\w+_(\w+)->', attrs).group(1)
                total += 2 * math.prod(out) * (math.prod(rhs) // rhs[labels.index('o')])
            branches = _BRANCHES.search(attrs)
            if branches:
                total += max(flops(b.strip().lstrip('%')) for b in branches.group(1).split(','))
            calls = dict(_CALLS.findall(attrs))
            if op == 'conditional' and 'true_computation' in calls:
                total += max(flops(calls.pop('true_computation')),
                             flops(calls.pop('false_computation')))
            times = 1
            if op == 'while':
                trip = _TRIP.search(attrs)
                if not trip:
                    raise ValueError(f'matmul_flops: loop {name} has no trip count XLA can '
                                     'tell (a while_loop on traced bounds); write it with '
                                     'lax.scan or fori_loop with static bounds')
                times = int(trip.group(1))
            total += sum(times * flops(c) for c in calls.values())
        return total

    return flops(entry)


def _instruction(line):
    """`(name, output dims, op, operand names, attributes)` of an HLO instruction line."""
    lhs, rhs = line.split(' = ', 1)
    name = lhs.strip().removeprefix('ROOT ').lstrip('%')
    if rhs.startswith('('):  # a tuple type: skip to its closing parenthesis
        end = _closing(rhs, 0)
        out, rest = None, rhs[end + 1:].lstrip()
    else:
        kind, _, rest = rhs.partition(' ')
        m = re.match(r'\w+\[([\d,]*)\]', kind)
        out = _dims(m.group(1)) if m else None
    op, paren, rest = rest.partition('(')
    if not paren:
        return None
    end = _closing('(' + rest, 0)
    operands = re.findall(r'%([\w.\-]+)', rest[:end - 1])
    return name, out, op.strip(), operands, rest[end:]


def _closing(s, start):
    depth = 0
    for i in range(start, len(s)):
        depth += {'(': 1, ')': -1}.get(s[i], 0)
        if depth == 0:
            return i
    return len(s) - 1


def _dims(s):
    return tuple(int(d) for d in s.split(',') if d)


def _ints(s):
    return [int(d) for d in s.split(',') if d]
