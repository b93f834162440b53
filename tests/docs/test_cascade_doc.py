"""docs/guide/cascade.md: every command parses as written, and the Python example runs against a real run."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace

import torch
from tests.conftest import doc_blocks, doc_commands, synthetic_arrays

import committee.data.fashion_mnist as fashion_mnist
from committee.cli.parser import build_parser

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "cascade.md"


def test_every_command_on_the_page_parses():
    commands = doc_commands(PAGE)
    seen = set()
    for line in commands:
        args = build_parser().parse_args(shlex.split(line)[1:])
        seen.add(args.command)
        if args.command in ("predict", "serve"):
            assert args.rule == "cascade"
    assert {"run", "evaluate", "predict", "serve", "shift"} <= seen


def test_the_python_example_runs(run_copy, monkeypatch, capsys):
    images = torch.from_numpy(synthetic_arrays(n_train=200, n_test=60)["test_images"])
    monkeypatch.setattr(fashion_mnist, "load_dataset", lambda: SimpleNamespace(images=images))
    (code,) = doc_blocks(PAGE, "python")
    exec(compile(code.replace('"runs/quick"', repr(str(run_copy))), str(PAGE), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and 0 <= float(lines[1]) <= 1
