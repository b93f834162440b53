"""One writer per run directory, tested with real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import synthetic_arrays, write_dataset

COMMITTEE = [sys.executable, "-m", "committee"]


def env(tmp_path: Path) -> dict:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "COMMITTEE_DOWNLOAD_URL": "http://127.0.0.1:9/"}


def committee(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    """One real `committee` process, as a user's shell would start it."""
    return subprocess.run([*COMMITTEE, *map(str, args)], capture_output=True, text=True, env=env(tmp_path), timeout=300)


def train_cmd(run: Path, data: Path, member: str, epochs: int = 1) -> list[str]:
    return [
        *COMMITTEE,
        "train",
        "--run-dir",
        str(run),
        "--data-dir",
        str(data),
        "--no-verify",
        "--members",
        member,
        "--epochs",
        str(epochs),
        "--quiet",
    ]


def test_a_second_writer_is_told_who_holds_the_run(run_copy, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom committee.store.run_dir import RunDir\n"
            "with RunDir(sys.argv[1]).lock('train'):\n    print('locked', flush=True)\n    time.sleep(60)\n",
            str(run_copy),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env(tmp_path),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (run_copy / "metrics.json").read_bytes()
        start = time.perf_counter()
        out = committee(tmp_path, "evaluate", "--run-dir", run_copy)
        assert out.returncode == 1 and time.perf_counter() - start < 60  # refused at once, not after a wait
        assert out.stderr.strip().splitlines() == [out.stderr.strip()]  # one line
        assert f"busy: `committee train` (pid {holder.pid}" in out.stderr
        assert (run_copy / "metrics.json").read_bytes() == before  # nothing lost, nothing half-written
        # A reader does not need the lock.
        read = committee(tmp_path, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
        assert read.returncode == 0, read.stderr
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops the lock with its process
        holder.wait()
    out = committee(tmp_path, "evaluate", "--run-dir", run_copy)
    assert out.returncode == 0, out.stderr


def test_two_trains_adding_members_lose_nothing(tmp_path):
    """Fault 5: two `train` commands adding different members both exited 0 and config.json kept one."""
    data = tmp_path / "data"
    write_dataset(data, synthetic_arrays(n_train=300, n_test=60))
    run = tmp_path / "run"
    a = subprocess.Popen(train_cmd(run, data, "shallow", 3), stderr=subprocess.PIPE, text=True, env=env(tmp_path))
    b = subprocess.Popen(train_cmd(run, data, "wide_deep", 3), stderr=subprocess.PIPE, text=True, env=env(tmp_path))
    results = {"shallow": (a.wait(120), a.stderr.read()), "wide_deep": (b.wait(120), b.stderr.read())}
    assert any(code == 0 for code, _ in results.values())
    for member, (code, err) in results.items():
        assert code in (0, 1) and "Traceback" not in err
        if code == 1:
            assert "busy" in err.strip().splitlines()[-1]
            out = committee(tmp_path, *train_cmd(run, data, member)[len(COMMITTEE) :])
            assert out.returncode == 0, out.stderr  # once the other has finished
    members = json.loads((run / "config.json").read_text())["members"]
    assert sorted(members) == ["shallow", "wide_deep"]
    assert all((run / "members" / m / "member.json").is_file() for m in members)
    assert committee(tmp_path, "verify", "--run-dir", run).returncode == 0
