"""The examples of docs/guide/prediction-sets.md and sklearn.md run as written."""

from __future__ import annotations

import re
import shlex
import shutil
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import cli

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide"


def blocks(page: str, language: str) -> list[str]:
    text = (GUIDE / page).read_text()
    return [textwrap.dedent(b) for b in re.findall(rf"```{language}\n(.*?)\s*```", text, re.S)]


def test_prediction_sets_page(finished_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(finished_run.parent / "cache"))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(finished_run, tmp_path / "runs" / "quick")
    x = np.load(finished_run.parent / "x.npy")
    np.save("x.npy", x)
    Image.fromarray(x[0]).save("boot.png")
    (tmp_path / "pictures").mkdir()
    for i, img in enumerate(x):
        Image.fromarray(img).save(tmp_path / "pictures" / f"{i}.png")
    for line in blocks("prediction-sets.md", "bash")[0].splitlines():
        code, out, err = cli(capsys, *shlex.split(line.split("#")[0])[1:])
        assert code == 0, err
        assert "set {" in out or '"prediction_set"' in out
    exec(compile(blocks("prediction-sets.md", "python")[0], "prediction-sets.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(x) and all(line.startswith("[") for line in printed)


def test_sklearn_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    exec(compile(blocks("sklearn.md", "python")[0], "sklearn.md", "exec"), {})
    scores, classes = capsys.readouterr().out.splitlines()[:2]
    assert all(float(s) > 0.5 for s in scores.strip("[]").split())  # three folds of handwritten digits
    assert "'eight'" in classes and str(tmp_path) in classes
