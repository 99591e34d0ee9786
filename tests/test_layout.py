"""The package's layout: the library apart from the runner (issue #28, acceptance 3).

- `import neurokit` and its library subpackages load no orbax, absl, ml_collections or
  tensorboardX (those are the runner's, `neurokit.experiment`) beyond what jax and optax
  load themselves (optax imports absl.logging).
- The modules of `neurokit` import one another without a cycle. Only the imports that run
  when a module is imported count (not those inside functions), and a submodule that
  imports from its own parent package is not an edge: Python initialises the parent
  first, by design (see `_edges`).
- Only `neurokit/experiment/` imports `neurokit.experiment`: the runner imports the
  library, never the reverse.
- No rule name is written as a value outside `neurokit/rules/`: code that needs to know
  about one rule asks the rule, not a list of names.

The checks read the source with `ast` (no import needed), except the first, which
imports the package in a fresh interpreter and reads `sys.modules`.
"""
import ast
import json
import os
import subprocess
import sys

from neurokit.rules import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'neurokit')
RUNNER = 'neurokit.experiment'
RUNNER_ONLY = ('orbax', 'absl', 'ml_collections', 'tensorboardX')
LIBRARY = ('neurokit.rules', 'neurokit.train', 'neurokit.parallel', 'neurokit.models',
           'neurokit.data')


def _modules():
    """{dotted module name: path} for every .py file under neurokit/ (a package is its
    `__init__`, named like the package)."""
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith('.py'):
                path = os.path.join(folder, f)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == '__init__':
                    parts = parts[:-1]
                out['.'.join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name):
    return MODULES.get(name, '').endswith('__init__.py')


def _parse(name):
    with open(MODULES[name]) as f:
        return ast.parse(f.read(), MODULES[name])


def _import_statements(tree, module_level):
    """The Import/ImportFrom nodes of `tree`. module_level: only those that run when the
    module is imported (not inside a function, nor under `if TYPE_CHECKING:`)."""
    found = []

    def visit(nodes):
        for node in nodes:
            if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                  ast.Lambda)):
                continue
            if (module_level and isinstance(node, ast.If)
                    and 'TYPE_CHECKING' in ast.unparse(node.test)):
                visit(node.orelse)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def _imported(name, node):
    """The dotted names the statement `node` in module `name` imports: for
    `from P import x`, `P.x` where that is a module, else `P`."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ''
    if node.level:  # relative: from the module's package, `level - 1` packages up
        package = name if _is_package(name) else name.rpartition('.')[0]
        for _ in range(node.level - 1):
            package = package.rpartition('.')[0]
        base = f'{package}.{base}' if base else package
    return [f'{base}.{a.name}' if f'{base}.{a.name}' in MODULES else base for a in node.names]


def _edges(name):
    """The neurokit modules that importing `name` runs first, by its module-level imports.

    Importing `a.b.c` runs `a`, `a.b` and then `a.b.c`, so each of those is an edge,
    except a package that contains `name`: Python runs a module's parent packages before
    the module itself, so a submodule that imports from its own package (the usual
    `from neurokit.rules import base` inside `neurokit/rules/bp.py`, while
    `neurokit/rules/__init__.py` imports `bp`) reads a package that is already
    initialising, by design. Those edges are left out; any other way back is a cycle.
    """
    ancestors = {name.rsplit('.', i)[0] for i in range(1, name.count('.') + 1)}
    edges = set()
    for node in _import_statements(_parse(name), module_level=True):
        for target in _imported(name, node):
            parts = target.split('.')
            for i in range(1, len(parts) + 1):
                prefix = '.'.join(parts[:i])
                if prefix in MODULES and prefix not in ancestors and prefix != name:
                    edges.add(prefix)
    return edges


def _cycles(graph):
    """Strongly connected components of more than one node (Tarjan's algorithm)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_cycle_finder_finds_a_cycle_and_only_a_cycle():
    # the finder itself, on graphs whose answer is known
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert _cycles({'a': {'b'}, 'b': {'c'}, 'c': set()}) == []


def test_import_neurokit_loads_none_of_the_runners_dependencies():
    """`import neurokit`, then the library's subpackages, in a fresh interpreter.

    optax itself imports absl (absl.logging, for its schedules), so what is checked is
    what neurokit loads beyond `import jax, optax`, run first in the same interpreter.
    """
    script = (
        'import json, sys\n'
        'import jax, optax\n'
        'deps = sorted(sys.modules)\n'
        'import neurokit\n'
        'first = sorted(sys.modules)\n'
        f'for name in {LIBRARY!r}:\n'
        '    __import__(name)\n'
        'print(json.dumps([deps, first, sorted(sys.modules)]))\n')
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    proc = subprocess.run([sys.executable, '-c', script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    deps, first, after = json.loads(proc.stdout.splitlines()[-1])
    assert 'neurokit.rules.bp' in first and RUNNER not in after

    def runner_only(loaded):
        return sorted(m for m in set(loaded) - set(deps) if m.split('.')[0] in RUNNER_ONLY)
    assert runner_only(first) == [], f'import neurokit loads {runner_only(first)}'
    assert runner_only(after) == [], f'importing {", ".join(LIBRARY)} loads {runner_only(after)}'


def test_the_import_graph_has_no_cycle():
    graph = {name: _edges(name) for name in MODULES}
    # the graph is read from the real imports (a parse that found nothing would pass)
    assert 'neurokit.train.loop' in graph['neurokit.parallel.mesh']
    cycles = _cycles(graph)
    assert not cycles, 'import cycles: ' + '; '.join(' <-> '.join(c) for c in cycles)


def test_only_the_runner_imports_the_runner():
    offenders = []
    for name in MODULES:
        if name == RUNNER or name.startswith(RUNNER + '.'):
            continue
        tree = _parse(name)
        targets = [t for node in _import_statements(tree, module_level=False)
                   for t in _imported(name, node)]
        # importlib.import_module('neurokit.experiment...') counts as an import too
        targets += [call.args[0].value for call in ast.walk(tree)
                    if isinstance(call, ast.Call) and call.args
                    and ast.unparse(call.func).endswith('import_module')
                    and isinstance(call.args[0], ast.Constant)
                    and isinstance(call.args[0].value, str)]
        offenders += [f'{name} imports {t}' for t in targets
                      if t == RUNNER or t.startswith(RUNNER + '.')]
    assert not offenders, '; '.join(offenders)


def _docstrings(tree):
    """The ids of the string constants that are docstrings or other bare string
    statements (prose, not values)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)}


def _export_lists(tree):
    """The ids of the strings listed in `__all__`: names of Python objects (the package
    re-exports the function `bp`), not a rule chosen by name."""
    ids = set()
    for node in ast.walk(tree):
        if (isinstance(node, (ast.Assign, ast.AugAssign))
                and '__all__' in ast.unparse(node.targets[0] if isinstance(node, ast.Assign)
                                             else node.target)):
            ids |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return ids


def _rule_names_used_as_values(tree, names):
    """`(line, name)` for each string constant in `tree` that is exactly one of `names`.

    A rule name written as a quoted value ('ipc', "ff": a dict key, a comparison, a
    default) means code outside `neurokit/rules/` special-cases that rule. Prose (a
    docstring, a comment, a message that mentions a rule among other words) is not a
    value and is not counted; neither are the names in `__all__`.
    """
    skip = _docstrings(tree) | _export_lists(tree)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value.strip() in names and id(node) not in skip)


def test_rule_name_finder_counts_values_not_prose():
    tree = ast.parse('"""The ipc rule."""\n'
                     "__all__ = ['bp']\n"
                     "SPECIAL = {'ipc': 1}\n"
                     'def f(rule):\n'
                     '    """ff is fine here."""\n'
                     '    # a comment about pc\n'
                     "    return rule == \"ff\" or 'mf' in rule, 'the pc rule', 'ffn'\n")
    assert _rule_names_used_as_values(tree, {'ipc', 'ff', 'pc', 'bp', 'mf'}) == [
        (3, 'ipc'), (7, 'ff'), (7, 'mf')]


def test_no_rule_name_is_written_outside_the_rules_package():
    names = set(registry.RULES)
    assert {'bp', 'ff', 'pc', 'fa'} <= names  # the registry was read
    offenders = []
    for name in MODULES:
        if name == 'neurokit.rules' or name.startswith('neurokit.rules.'):
            continue
        for line, value in _rule_names_used_as_values(_parse(name), names):
            offenders.append(f'{os.path.relpath(MODULES[name], ROOT)}:{line} {value!r}')
    assert not offenders, 'rule names outside neurokit/rules/: ' + ', '.join(offenders)
