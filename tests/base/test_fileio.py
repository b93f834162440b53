"""Files and disks: every OSError is one line naming the path and the cause, finished work survives, no temp
files are left, and outputs respect the umask."""

import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import uuid

import pytest
from safetensors.torch import load_file

from committee.base import fileio
from committee.base.errors import CommitteeError
from committee.cli.commands import main
from conftest import make_synthetic_run, synthetic_arrays, write_dataset


def one_line(err: str) -> str:
    """The one error line (progress logs may come before it), and no traceback."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("committee: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err
    return errors[0]


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    write_dataset(d, synthetic_arrays())
    return d


def train_args(run_dir, data_dir, members):
    return [
        "train",
        "--run-dir",
        str(run_dir),
        "--data-dir",
        str(data_dir),
        "--no-verify",
        "--members",
        members,
        "--epochs",
        "1",
        "--quiet",
    ]


def test_run_dir_that_is_a_file(tmp_path, data_dir, capsys):
    target = tmp_path / "a-file"
    target.write_text("not a run")
    assert main(train_args(target, data_dir, "shallow")) == 1
    line = one_line(capsys.readouterr().err)
    assert str(target) in line and "not a directory" in line
    assert target.read_text() == "not a run"


def test_export_into_unwritable_place(tmp_path, capsys):
    run_dir, _ = make_synthetic_run(tmp_path, "shallow", epochs=1)
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    capsys.readouterr()
    assert main(["export", "--run-dir", str(run_dir), "--out", str(blocker / "c.onnx")]) == 1
    assert "not a directory" in one_line(capsys.readouterr().err)


def test_export_permission_denied(tmp_path, capsys, monkeypatch):
    """As root a chmod'ed directory is still writable, so the OS's refusal is simulated where the temp file is made."""
    run_dir, _ = make_synthetic_run(tmp_path, "shallow", epochs=1)
    out_dir = tmp_path / "locked"
    out_dir.mkdir()

    real = fileio.tempfile.mkstemp

    def refuse(*args, dir=None, **kw):
        if pathlib.Path(dir) == out_dir:
            raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, "tmp"))
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", refuse)
    capsys.readouterr()
    assert main(["export", "--run-dir", str(run_dir), "--out", str(out_dir / "c.onnx")]) == 1
    line = one_line(capsys.readouterr().err)
    assert str(out_dir) in line and "Permission denied" in line
    assert list(out_dir.iterdir()) == []


def test_full_disk_mid_run_keeps_finished_members(tmp_path, data_dir, capsys, monkeypatch):
    """The second member's weights hit ENOSPC: one line, exit 1, the first member intact, no temp files."""
    run_dir = tmp_path / "run"
    real = pathlib.Path.write_bytes

    def full_for_second_member(self, data):
        if "wide_deep" in str(self) and "weights" in self.name:
            real(self, data[: len(data) // 2])  # the disk filled up half-way through
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_for_second_member)
    assert main(train_args(run_dir, data_dir, "shallow,wide_deep")) == 1
    line = one_line(capsys.readouterr().err)
    assert "No space left on device" in line and "members/wide_deep/weights.safetensors" in line
    assert not list(run_dir.rglob("*.tmp"))
    assert not (run_dir / "members/wide_deep/weights.safetensors").exists()
    monkeypatch.undo()
    assert json.loads((run_dir / "members/shallow/member.json").read_text())["name"] == "shallow"
    load_file(run_dir / "members/shallow/weights.safetensors")  # intact and readable
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 0  # the finished member still evaluates


def _tmpfs(path: pathlib.Path, size: str) -> bool:
    path.mkdir()
    return (
        os.geteuid() == 0
        and shutil.which("mount")
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", f"committee-test-{uuid.uuid4().hex[:8]}", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )


def test_really_full_filesystem(tmp_path, data_dir):
    """A real 3 MB tmpfs: shallow (0.4 MB of weights) fits, basic_cnn (2.8 MB) does not."""
    disk = tmp_path / "disk"
    if not _tmpfs(disk, "3m"):
        pytest.skip(
            "cannot mount a tmpfs here (needs root); test_full_disk_mid_run_keeps_finished_members covers the path"
        )
    try:
        run_dir = disk / "run"
        r = subprocess.run(
            [sys.executable, "-m", "committee", *train_args(run_dir, data_dir, "shallow")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        r = subprocess.run(
            [sys.executable, "-m", "committee", *train_args(run_dir, data_dir, "basic_cnn")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 1
        line = one_line(r.stderr)
        assert "No space left on device" in line and "basic_cnn" in line
        assert not list(run_dir.rglob("*.tmp"))
        load_file(run_dir / "members/shallow/weights.safetensors")
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        fileio.write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == mode


def test_run_outputs_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        run_dir, _ = make_synthetic_run(tmp_path, "shallow", epochs=1, command="run")
    finally:
        os.umask(old)
    for rel in (
        "report.html",
        "metrics.json",
        "config.json",
        "members/shallow/weights.safetensors",
        "figures/accuracy.png",
    ):
        assert (run_dir / rel).stat().st_mode & 0o777 == 0o644, rel


def test_atomic_write_failure_leaves_old_file(tmp_path, monkeypatch):
    target = tmp_path / "keep.json"
    fileio.write_json(target, {"v": 1})
    monkeypatch.setattr(
        fileio.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(errno.EROFS, "Read-only file system", b))
    )
    with pytest.raises(CommitteeError, match="Read-only file system"):
        fileio.write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


@pytest.mark.parametrize("where", ["mkstemp", "body", "cleanup"])
def test_interrupt_during_a_write_leaves_the_file_whole_or_absent(tmp_path, monkeypatch, where):
    """Ctrl-C (or SIGTERM) landing anywhere in an atomic write is held until the write is done or undone:
    the stop still happens, right after, and no temporary file is left (a flaky CI failure once found one)."""
    import signal
    import tempfile

    real_mkstemp, real_replace = tempfile.mkstemp, os.replace

    def mkstemp_then_interrupt(*a, **kw):
        result = real_mkstemp(*a, **kw)  # the file exists now, before atomic_path can guard it
        os.kill(os.getpid(), signal.SIGINT)
        return result

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        os.kill(os.getpid(), signal.SIGTERM)  # in the clean-up after the rename

    # Ctrl-C as a terminal delivers it; pytest-xdist's workers start with SIGINT ignored.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if where == "mkstemp":
            monkeypatch.setattr(fileio.tempfile, "mkstemp", mkstemp_then_interrupt)
        if where == "cleanup":
            monkeypatch.setattr(fileio.os, "replace", replace_then_interrupt)
        target = tmp_path / "out.txt"
        with pytest.raises(KeyboardInterrupt):
            with fileio.atomic_path(target) as tmp:
                if where == "body":
                    os.kill(os.getpid(), signal.SIGINT)
                tmp.write_text("complete")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the write put it back
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    assert target.read_text() == "complete"
    assert not list(tmp_path.glob(".*.tmp"))
