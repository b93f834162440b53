"""The README's Python example runs as shown (on the real dataset, in a fresh directory)."""

import re
from pathlib import Path

import numpy as np

from conftest import requires_real_data

README = Path(__file__).resolve().parents[2] / "README.md"


def python_example() -> str:
    text = README.read_text()
    section = text[text.index("## Python") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@requires_real_data
def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(python_example(), "README.md (Python)", "exec"), namespace)
    out = capsys.readouterr().out
    result, pred, trained = namespace["result"], namespace["pred"], namespace["trained"]
    assert (tmp_path / "runs/api-demo/report.html").is_file()
    assert set(result.members) == {"shallow", "wide_deep"} and "committee:mean" in out
    assert result.accuracy("committee:mean") > 0.78  # three epochs on 10,000 real images (82 % measured)
    assert pred.probs.shape == (5, 10) and np.allclose(pred.probs.sum(1), 1, atol=1e-5)
    assert len(pred.disagreement) == 5 and ((0 <= pred.disagreement) & (pred.disagreement <= 1)).all()
    # the fitted object agrees with itself: predict is the argmax of predict_proba, labels name classes
    images = namespace["images"]
    assert (trained.predict(images) == trained.predict_proba(images).argmax(1)).all()
    assert trained.members == ["shallow", "wide_deep"] and len(trained.classes) == 10


def test_readme_is_a_short_guide():
    text = README.read_text()
    assert len(text.encode()) <= 12_000, "the README is a guide; the rest belongs in docs/"
    assert text.index("```python") < 6_000, "the Python example sits in the README's first 6 KB"
