"""docs/guide/time-limit.md: every command parses as written, and the Python example builds the config it says.

(The runs themselves are tested in tests/study/test_time_limit_and_tracking.py on synthetic data: a 10-minute run
does not belong in a test.)"""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.conftest import doc_blocks, doc_commands

import committee
from committee.cli.parser import build_parser

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "time-limit.md"


def blocks(language: str) -> list[str]:
    return doc_blocks(PAGE, language)


def test_every_command_on_the_page_parses():
    commands = doc_commands(PAGE)
    assert len(commands) >= 5
    for line in commands:
        args = build_parser().parse_args(shlex.split(line)[1:])
        assert args.command == "run"
        if "--time-limit" in line:
            assert args.time_limit in (150.0, 600.0)
        if "--track" in line:
            assert args.track.startswith(("mlflow", "tensorboard"))


def test_the_python_example_builds_a_planned_config(monkeypatch):
    seen = {}
    monkeypatch.setattr(committee, "run", lambda cfg, run_dir, **kw: seen.update(cfg=cfg, run_dir=run_dir))
    exec(compile(blocks("python")[0], str(PAGE), "exec"), {})
    cfg = seen["cfg"].check()
    assert cfg.preset == "planned" and cfg.time_limit == 600 and seen["run_dir"] == "runs/ten"
