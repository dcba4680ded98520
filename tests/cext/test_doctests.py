"""Every ``>>>`` example in the package runs as a doctest and passes.

Examples that need a live engine, a printer or a broker are written as plain
indented code in their docstrings (no prompts), so anything that looks like a
doctest is one.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import tessera

SKIP = ("__main__", "crashloop")  # a program entry point, a process the crash test kills


def test_every_docstring_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    attempted = 0
    failures: list[str] = []
    finder = doctest.DocTestFinder()
    for info in pkgutil.walk_packages(tessera.__path__, "tessera."):
        if info.name.endswith(SKIP):
            continue
        module = importlib.import_module(info.name)
        for test in finder.find(module):
            if not test.examples:
                continue
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            report: list[str] = []
            runner.run(test, out=report.append)
            attempted += runner.tries
            if runner.failures:
                failures.append(f"{test.name} ({test.filename}:{test.lineno}):\n"
                                + "".join(report)[:2000])
    assert not failures, "\n\n".join(failures)
    assert attempted >= 30  # the self-contained examples (stats, topics, config, ...) ran
