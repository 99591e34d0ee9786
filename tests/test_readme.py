"""README.md's examples work as written: the notebook snippet learns (for a rule the optimizer
steps and for one that steps it inside its own pass), the example rule trains only its output
layer once registered the way the README says, and the README's links and test command hold."""
import os
import re
import sys
import types

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, 'README.md')
TEST_COMMAND = "pip install -e '.[test]' && python -m pytest -n 2 tests"


def _text(path=README):
    with open(path, encoding='utf-8') as f:
        return f.read()


def _python_blocks():
    return re.findall(r'```python\n(.*?)```', _text(), re.S)


def _notebook_snippet():
    (code,) = [b for b in _python_blocks() if "rules.build('bp', model)" in b]
    return code


def _run_snippet(code, capsys):
    """Executes README code; returns its namespace and the accuracy it printed last."""
    namespace = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
    accuracy = float(capsys.readouterr().out.split()[-1])
    return namespace, accuracy


@pytest.mark.parametrize('rule', ['bp', 'ipc'])
def test_notebook_snippet_learns(rule, capsys):
    code = _notebook_snippet().replace("rules.build('bp', model)", f'rules.build({rule!r}, model)')
    assert f'rules.build({rule!r}, model)' in code
    _, accuracy = _run_snippet(code, capsys)
    # 10 epochs of batch 64 on the 8x8 digits: far above the 10 % of chance for both
    assert accuracy > 0.6, accuracy


def test_example_rule_registers_and_trains_only_the_output_layer(monkeypatch, capsys):
    from neurokit import models, rules, train
    from neurokit.rules import registry

    (code,) = [b for b in _python_blocks() if b.startswith('# neurokit/rules/')]
    path = code.splitlines()[0][2:].strip()
    assert os.path.dirname(path) == 'neurokit/rules'
    assert not os.path.exists(os.path.join(ROOT, path)), f'{path} exists: pick a new name'
    # the registry line has the shape of the registry's own entries and names that file
    entry = r"'(\w+)': '(\w+):(\w+)',"
    (line,) = [l for l in _text().splitlines() if re.search(entry, l) and 'registry.py' in l]
    name, module, constructor = re.search(entry, line).groups()
    registry_source = _text(os.path.join(ROOT, 'neurokit', 'rules', 'registry.py'))
    assert re.search(r"\n\s+'bp': 'bp:bp',", registry_source), 'registry entries changed shape'
    assert module == os.path.splitext(os.path.basename(path))[0]
    assert name not in registry.RULES

    rule_module = types.ModuleType(f'neurokit.rules.{module}')
    exec(compile(code, path, 'exec'), rule_module.__dict__)
    monkeypatch.setitem(sys.modules, rule_module.__name__, rule_module)
    monkeypatch.setitem(registry.RULES, name, getattr(rule_module, constructor))
    ns, accuracy = _run_snippet(
        _notebook_snippet().replace("rules.build('bp', model)", f'rules.build({name!r}, model)'),
        capsys)
    # a linear readout of two random 128-wide ReLU layers separates the digits far above chance
    assert accuracy > 0.6, accuracy
    # ... and only the output layer moved: the hidden layers are those of a fresh init
    state = ns['state']
    fresh = train.init_state(ns['jax'].random.PRNGKey(0), ns['model'], ns['rule'],
                             ns['optimizer'])
    *hidden, head = state.params['layers']
    *hidden0, head0 = fresh.params['layers']
    for a, b in zip(ns['jax'].tree.leaves(hidden), ns['jax'].tree.leaves(hidden0)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(head['w']), np.asarray(head0['w']))
    assert isinstance(rules.build(name, models.mlp((8, 8, 1), 10, hidden=(8,))), rules.Rule)


def test_test_command_is_the_one_ci_runs():
    assert TEST_COMMAND in _text()
    assert TEST_COMMAND in _text(os.path.join(ROOT, '.ci', 'run'))


def _slug(heading):
    """GitHub's anchor for a markdown heading."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_links_point_at_files_and_headings():
    docs = os.path.join(ROOT, 'docs')
    pages = [README] + [os.path.join(docs, f) for f in sorted(os.listdir(docs)) if
                        f.endswith('.md')]
    for page in pages:
        text = re.sub(r'```.*?```', '', _text(page), flags=re.S)
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+://', target):
                continue
            file, _, anchor = target.partition('#')
            resolved = os.path.normpath(os.path.join(os.path.dirname(page), file)) if file else page
            assert os.path.exists(resolved), f'{os.path.relpath(page, ROOT)} links to {target}'
            if anchor and resolved.endswith('.md'):
                headings = re.findall(r'^#+ (.*)$', _text(resolved), re.M)
                assert anchor in {_slug(h) for h in headings}, (
                    f'{os.path.relpath(page, ROOT)} links to #{anchor}, which {file or "it"} '
                    'does not have')


def test_readme_paragraphs_stay_short():
    """A newcomer reads the README in short paragraphs (it once ran to 21-26 lines each)."""
    text = re.sub(r'```.*?```', '', _text(), flags=re.S)
    for paragraph in re.split(r'\n\s*\n', text):
        items = re.split(r'\n(?=- )', paragraph)  # each list item counts on its own
        for item in items:
            lines = [l for l in item.splitlines() if l.strip()]
            assert len(lines) <= 8, f'README paragraph of {len(lines)} lines: {lines[0][:60]}'
