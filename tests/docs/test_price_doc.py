"""docs/guide/price.md: every command parses as written, and the Python example calls the API as it exists.

(The runs themselves are tested in tests/study/test_baselines.py and test_students.py on synthetic data.)"""

from __future__ import annotations

import inspect
import shlex
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import doc_blocks, doc_commands

import committee
from committee.cli.parser import build_parser
from committee.serving.trained import Committee
from committee.study import api

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "price.md"


def blocks(language: str) -> list[str]:
    return doc_blocks(PAGE, language)


def test_every_command_on_the_page_parses():
    commands = doc_commands(PAGE)
    assert len(commands) >= 6
    seen = set()
    for line in commands:
        args = build_parser().parse_args(shlex.split(line)[1:])
        seen.add(args.command)
        if args.command == "run":
            assert args.baseline == "same-budget" or args.snapshots == 3
        if args.command in ("predict", "export"):
            assert args.model == "student"
    assert seen == {"run", "distill", "predict", "export"}


def test_the_python_example_uses_the_api_as_it_is(monkeypatch):
    calls = {}
    gain = SimpleNamespace(gain=0.001, mcnemar_p=0.5)
    result = SimpleNamespace(
        committees={"mean": SimpleNamespace(vs_companions={"same_budget": gain})}, accuracy=lambda name: 0.9
    )

    def fake(name, real):
        def call(*args, **kwargs):
            inspect.signature(real).bind(*args, **kwargs)  # the example's arguments exist
            calls[name] = (args, kwargs)
            return result

        return call

    monkeypatch.setattr(committee, "run", fake("run", api.run))
    monkeypatch.setattr(committee, "distill", fake("distill", api.distill))
    monkeypatch.setattr(Committee, "load", fake("load", Committee.load))
    exec(compile(blocks("python")[0], str(PAGE), "exec"), {})
    cfg = calls["run"][0][0].check()
    assert cfg.baseline == "same-budget" and cfg.preset == "quick"
    assert calls["distill"][1] == {"temperature": 2.0, "alpha": 0.5} and calls["load"][1] == {"model": "student"}
