"""docs/guide/fine-tuning.md's three steps run as written: pretrain, write digits.npz, fine-tune."""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from conftest import cli

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "fine-tuning.md"


def blocks(language: str) -> list[str]:
    return [textwrap.dedent(b) for b in re.findall(rf"```{language}\n(.*?)\s*```", PAGE.read_text(), re.S)]


def test_the_pages_steps_run_as_written(tmp_path, monkeypatch, capsys, synthetic_dir):
    """On tiny synthetic Fashion-MNIST-format files in place of the real ones for the pretraining."""
    monkeypatch.setenv("COMMITTEE_DATA_DIR", str(synthetic_dir))
    monkeypatch.chdir(tmp_path)
    pretrain, fine_tune = (shlex.split(b)[1:] for b in blocks("bash"))
    # The page's 44 epochs are for real digits; 9 keep every step of it (8 frozen, then one unfrozen) in a tenth
    # of the time on the synthetic stand-in.
    assert fine_tune[fine_tune.index("--epochs") + 1] == "44"
    fine_tune[fine_tune.index("--epochs") + 1] = "9"
    code, _, err = cli(capsys, *pretrain)
    assert code == 0, err
    exec(compile(blocks("python")[0], "fine-tuning.md (Python)", "exec"), {})
    code, _, err = cli(capsys, *fine_tune)
    assert code == 0, err
    assert "air1 init from" in err and "tensors loaded" in err
    info = json.loads((tmp_path / "runs/digits/members/air1/member.json").read_text())
    assert info["init"]["file"].endswith("runs/fmnist/members/air1/weights.safetensors")
    assert not info["init"]["missing"] and not info["init"]["reshaped"]
    assert info["recipe"]["freeze_epochs"] == 8 and info["recipe"]["backbone_lr_scale"] == 0.3
    assert (tmp_path / "runs/digits/report.html").is_file()
    # fine-tuned, not copied: the weights moved away from the pretrained ones
    before = load_file(tmp_path / "runs/fmnist/members/air1/weights.safetensors")
    after = load_file(tmp_path / "runs/digits/members/air1/weights.safetensors")
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
