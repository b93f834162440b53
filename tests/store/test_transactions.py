"""Re-training in place is a transaction; member names from files never leave the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from committee.store.integrity import rehash_run
from committee.store.run_dir import RunDir
from conftest import cli


def data_dir(run: Path) -> Path:
    return Path(json.loads((run / "config.json").read_text())["data_dir"])


def weights(run: Path, member: str) -> dict:
    return load_file(str(run / "members" / member / "weights.safetensors"))


def test_retraining_a_finished_member_replaces_it_whole(run_copy, capsys):
    """Fault 1: `train --members shallow --lr 0.002` on a run that has shallow used to break the run for good."""
    before = weights(run_copy, "shallow")
    other = (run_copy / "members" / "wide_deep" / "weights.safetensors").read_bytes()
    code, _, err = cli(
        capsys,
        "train",
        "--run-dir",
        run_copy,
        "--data-dir",
        data_dir(run_copy),
        "--no-verify",
        "--members",
        "shallow",
        "--lr",
        "0.002",
        "--epochs",
        "1",
        "--quiet",
    )
    assert code == 0, err
    after = weights(run_copy, "shallow")
    assert any(not (before[k] == after[k]).all() for k in before)  # really re-trained
    assert (run_copy / "members" / "wide_deep" / "weights.safetensors").read_bytes() == other
    assert json.loads((run_copy / "members" / "shallow" / "member.json").read_text())["lr"] == 0.002
    assert not (run_copy / "metrics.json").exists()  # fitted on the old member: dropped, re-made on demand
    assert not list((run_copy / "members").glob(".*"))  # no staging folder left
    assert cli(capsys, "verify", "--run-dir", run_copy)[0] == 0
    code, out, _ = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy", "--json")
    assert code == 0 and len(json.loads(out)["predictions"]) == 4
    assert cli(capsys, "verify", "--run-dir", run_copy)[0] == 0  # predict's evaluation recorded metrics.json


def test_interrupted_retraining_leaves_the_run_as_before(run_copy, capsys):
    run = RunDir(run_copy)
    before = (run_copy / "members" / "shallow" / "weights.safetensors").read_bytes()
    run.start_member("shallow")  # a re-training that is then killed half-way
    staged = run_copy / "members" / ".next-shallow"
    assert staged.is_dir()
    (staged / "weights.safetensors").write_bytes(b"half")
    assert cli(capsys, "verify", "--run-dir", run_copy)[0] == 0  # the old member is still whole and valid
    code, out, _ = cli(capsys, "train", "--run-dir", run_copy, "--resume", "--quiet")
    assert code == 0 and not staged.exists()
    assert (run_copy / "members" / "shallow" / "weights.safetensors").read_bytes() == before


def test_swap_killed_between_renames_is_rolled_back(run_copy, capsys):
    members = run_copy / "members"
    (members / "shallow").rename(members / ".old-shallow")  # killed after the first rename
    done = RunDir(run_copy).recover()
    assert done == ["restored member shallow (its replacement was interrupted)"]
    assert cli(capsys, "verify", "--run-dir", run_copy)[0] == 0


def test_swap_killed_before_the_manifest_is_rolled_forward(run_copy, capsys):
    """Killed after both renames, before the manifest was updated: the new member is whole; record it."""
    import shutil

    members = run_copy / "members"
    shutil.copytree(members / "shallow", members / ".old-shallow")
    path = members / "shallow" / "member.json"
    path.write_text(path.read_text().replace('"lr": 0.001', '"lr": 0.002'))  # the new member's own files
    assert cli(capsys, "verify", "--run-dir", run_copy)[0] == 1
    code, _, err = cli(capsys, "evaluate", "--run-dir", run_copy)  # a writer: takes the lock, recovers
    assert code == 0, err
    assert not (members / ".old-shallow").exists()
    assert cli(capsys, "verify", "--run-dir", run_copy)[0] == 0


@pytest.mark.parametrize("bad", ["../../../escaped", "/tmp/committee-escaped-abs", "a/b", "..", ".hidden"])
def test_member_names_from_config_cannot_leave_the_run(run_copy, capsys, bad, tmp_path):
    """Fault 2: a member "../../../escaped" in config.json made `train --resume` write outside the run."""
    path = run_copy / "config.json"
    doc = json.loads(path.read_text())
    doc["members"].append(bad)
    path.write_text(json.dumps(doc))
    rehash_run(RunDir(run_copy))  # a hostile sender ships a consistent manifest too
    listing = sorted(p for p in tmp_path.rglob("*"))
    code, _, err = cli(capsys, "train", "--run-dir", run_copy, "--resume", "--quiet")
    assert code == 1 and "config.json" in err and "is not allowed" in err
    assert sorted(p for p in tmp_path.rglob("*")) == listing  # nothing written anywhere
    assert not Path("/tmp/committee-escaped-abs").exists()


def test_members_folder_symlinked_outside_is_refused(run_copy, capsys, tmp_path):
    outside = tmp_path / "outside"
    (run_copy / "members").rename(outside)
    (run_copy / "members").symlink_to(outside)
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
    assert code == 1 and "leads outside the run directory" in err


def test_bad_member_name_flag_is_a_usage_error(run_copy, capsys):
    code, _, err = cli(capsys, "train", "--run-dir", run_copy, "--members", "../x", "--quiet")
    assert code == 2 and "member name '../x' is not allowed" in err


def test_temp_files_of_a_killed_report_or_export_are_removed(run_copy, capsys, tmp_path):
    """Fault 8: a killed report/export left temp files that only `train --resume` removed."""
    stale_report = run_copy / ".report.html.abc12345.tmp"  # mkstemp: 8 random characters
    stale_report.write_text("half a report")
    stale_onnx = tmp_path / ".c.onnx.xyz.tmp"
    stale_onnx.write_bytes(b"half a graph")
    assert cli(capsys, "report", "--run-dir", run_copy)[0] == 0
    assert not stale_report.exists()
    code, _, err = cli(capsys, "export", "--run-dir", run_copy, "--out", tmp_path / "c.onnx")
    assert code == 0, err
    assert not stale_onnx.exists() and (tmp_path / "c.onnx").stat().st_size > 0
