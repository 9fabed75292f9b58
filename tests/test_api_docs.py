"""The code in docs/api.md (as doctests) and in the README's Python API section runs."""

from __future__ import annotations

import doctest
import re

from conftest import ROOT


def test_api_page_examples_run(monkeypatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "docs" / "api.md"), module_relative=False)
    report = capsys.readouterr().out
    assert result.failed == 0, report
    assert result.attempted >= 30


def readme_python_section() -> str:
    """The one fenced python block of the README's "## Python API" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_python_section_runs_as_its_comments_say(monkeypatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    code = readme_python_section()
    exec(compile(code, "README.md (Python API)", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    # each print's comment says what it prints; "..." stands for the rest of the line
    said = [
        line.split("# ", 1)[1] for line in code.splitlines() if line.strip().startswith("print(")
    ]
    assert len(printed) == len(said) == 4
    for got, comment in zip(printed, said, strict=True):
        want = comment.split(" (")[0] if not comment.startswith("RTL") else comment
        want = want.split(" ...")[0]
        assert got.startswith(want), (got, comment)
