"""docs/guide/own-models.md's example runs as written: the module, the three commands, the Python API."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import cli

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "own-models.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.S)


def test_the_pages_example_runs_as_written(tmp_path, monkeypatch, capsys, clean_registry, synthetic_dir):
    """On tiny synthetic Fashion-MNIST-format files in place of the real ones (the commands as written;
    the real data would make this a benchmark)."""
    pytest.importorskip("onnx")
    from committee.data.fashion_mnist import load_dataset

    monkeypatch.setenv("COMMITTEE_DATA_DIR", str(synthetic_dir))
    module, api = blocks("python")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mymodels.py").write_text(module)
    shirt = load_dataset().images[-1].numpy()
    Image.fromarray(255 - shirt).save(tmp_path / "my-shirt.png")  # dark on light, as photographed
    for line in blocks("bash")[0].strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "committee"
        code, out, err = cli(capsys, *argv[1:])
        assert code == 0, (line, err)
        if argv[1] == "predict":
            assert "my-shirt.png" in out
    assert (tmp_path / "runs/mixer/report.html").is_file() and (tmp_path / "mixer.onnx").is_file()
    namespace: dict = {}
    exec(compile(api, "own-models.md (Python)", "exec"), namespace)
    result = namespace["result"]
    assert list(result.members) == ["TinyMixer", "air_cnn"] and 0 <= result.accuracy("committee:mean") <= 1
    probs = namespace["trained"].predict_proba(load_dataset().images[-8:].numpy())
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    sys.modules.pop("mymodels", None)
