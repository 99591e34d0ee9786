"""README.md's notebook example runs as written and learns, for a rule that leaves the
update to the optimizer (bp) and for one that applies its own (ipc)."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'README.md')


def _snippet():
    text = open(README).read()
    blocks = re.findall(r'```python\n(.*?)```', text, re.S)
    (code,) = [b for b in blocks if 'rules.build(' in b and 'def step(' in b]
    return code


@pytest.mark.parametrize('rule', ['bp', 'ipc'])
def test_readme_notebook_example_learns(rule, capsys):
    code = _snippet().replace("rules.build('bp', model)", f"rules.build({rule!r}, model)")
    assert f"rules.build({rule!r}, model)" in code
    namespace = {}
    exec(compile(code, 'README.md', 'exec'), namespace)
    accuracy = float(capsys.readouterr().out.split()[-1])
    # 200 steps of batch 64 on the 8x8 digits: far above the 10 % of chance for both
    assert accuracy > 0.6, accuracy
