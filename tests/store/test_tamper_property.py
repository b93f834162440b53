"""Property: whatever is done to a finished run directory's files, `predict` either gives exactly the
same answers or refuses in one line, and `verify` never crashes. benchmarks/tamper_fuzz.py runs more."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from committee.cli.commands import main

EXAMPLES = int(os.environ.get("COMMITTEE_TAMPER_EXAMPLES", "200"))

TARGETS = [
    "config.json",
    "data.json",
    "manifest.json",
    "metrics.json",
    "labels_val.npy",
    "labels_test.npy",
    "splits/val.npy",
    "members/shallow/member.json",
    "members/shallow/weights.safetensors",
    "members/shallow/probs_val.npy",
    "members/wide_deep/probs_test.npy",
    "members/wide_deep/history.csv",
    "members/wide_deep/member.json",
    "members/wide_deep/weights.safetensors",
    "report.md",
]
JSON_VALUES = [None, -1, 0, 2**70, 1e308, "x", "../../escaped", [], {}, True, [1, 2], {"a": 1}]


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def predictions(run: Path, x: Path) -> tuple[int, object, str]:
    code, out, err = run_cli("predict", "--run-dir", run, x, "--json")
    doc = json.loads(out)
    return code, doc.get("predictions"), err


def mutate(path: Path, kind: str, position: float, value) -> None:
    if kind == "delete":
        path.unlink()
    elif kind == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * position)])
    elif kind == "flip":
        data = bytearray(path.read_bytes())
        if data:
            data[min(int(len(data) * position), len(data) - 1)] ^= 0x01
        path.write_bytes(bytes(data))
    else:  # edit one key of a JSON document, keeping it valid JSON
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            return
        if isinstance(doc, dict) and doc:
            keys = sorted(doc)
            doc[keys[min(int(len(keys) * position), len(keys) - 1)]] = value
            path.write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def baseline(finished_run):
    code, preds, err = predictions(finished_run, finished_run.parent / "x.npy")
    assert code == 0, err
    return preds


def test_tampering_never_changes_answers_silently(finished_run, baseline, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(finished_run.parent / "cache"))

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(
        target=st.sampled_from(TARGETS),
        kind=st.sampled_from(["flip", "truncate", "delete", "json"]),
        position=st.floats(0, 1),
        value=st.sampled_from(JSON_VALUES),
    )
    def check(target, kind, position, value):
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            shutil.copytree(finished_run, run, ignore=shutil.ignore_patterns("figures", "report.html"))
            mutate(run / target, kind, position, value)
            code, preds, err = predictions(run, finished_run.parent / "x.npy")
            assert "Traceback" not in err
            if code == 0:
                assert preds == baseline, f"{kind} {target}: answers changed without a word"
            else:
                assert code in (1, 2) and len([ln for ln in err.splitlines() if "error:" in ln]) == 1, err
            code, out, err = run_cli("verify", "--run-dir", run)
            assert code in (0, 1) and "Traceback" not in err

    check()
