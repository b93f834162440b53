"""The CLI's promise on bad input: one line, the right exit code, a JSON error with --json, no traceback."""

from __future__ import annotations

import json
import warnings

import pytest

from conftest import cli


@pytest.mark.parametrize(
    "argv, message",
    [
        (["shift", "--run-dir", "r", "--seed", "-1"], "must be 0 or more"),
        (["train", "--run-dir", "r", "--seed", str(2**70)], "must be below 4,294,967,296"),
        (["predict", "--run-dir", "r", "x.npy", "--max-pixels", "0"], "must be at least 1"),
    ],
)
def test_bad_numbers_are_usage_errors(capsys, argv, message):
    code, _, err = cli(capsys, *argv)
    assert code == 2 and message in err


def test_json_errors_are_one_json_document_on_stdout(capsys, tmp_path):
    code, out, err = cli(capsys, "evaluate", "--run-dir", tmp_path / "missing", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["exit_code"] == 1 and "no such run directory" in doc["error"]
    assert err.startswith("committee: error:")
    code, out, _ = cli(capsys, "train", "--run-dir", tmp_path / "r", "--members", "nope", "--json")
    assert code == 2 and json.loads(out)["exit_code"] == 2


def test_library_warnings_become_one_line_each(capsys):
    from committee.cli.output import one_line_warnings

    previous = warnings.showwarning
    try:
        one_line_warnings()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            for glyph in range(72):  # matplotlib warns once per missing glyph
                warnings.warn_explicit(f"Glyph {glyph} missing from font(s) DejaVu Sans.", UserWarning, "text.py", 1)
    finally:
        warnings.showwarning = previous
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("committee: warning: Glyph 0 missing")


def test_compare_refuses_runs_with_other_classes(run_copy, capsys, tmp_path):
    import shutil

    from committee.store.integrity import rehash_run
    from committee.store.run_dir import RunDir

    other = tmp_path / "other"
    shutil.copytree(run_copy, other)
    doc = json.loads((other / "data.json").read_text())
    doc["classes"] = [f"c{k}" for k in range(len(doc["classes"]))]
    (other / "data.json").write_text(json.dumps(doc))
    rehash_run(RunDir(other))
    code, _, err = cli(capsys, "compare", run_copy, other)
    assert code == 1 and "different class lists" in err
    assert cli(capsys, "compare", run_copy, run_copy)[0] == 0


def test_evaluate_json_never_prints_nan(run_copy, capsys, monkeypatch):
    """A NaN or infinity (an undefined spread, an infinite loss) reaches --json as null, never a bare NaN."""
    from committee.study import api

    class Result:
        def to_dict(self):
            return {"nll": float("inf"), "std": float("nan"), "scores": [0.5, float("-inf")]}

    monkeypatch.setattr(api, "evaluate", lambda run_dir, rules=None, *cascade_target: Result())
    code, out, _ = cli(capsys, "evaluate", "--run-dir", run_copy, "--json")
    assert code == 0 and "NaN" not in out and "Infinity" not in out
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert doc == {"nll": None, "std": None, "scores": [0.5, None]}
