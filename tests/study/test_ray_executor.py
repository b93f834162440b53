"""The Ray backend on a two-node cluster on this machine: placement, equality with the local
backend, faults (worker killed, node removed, job raising, driver killed) and the CLI's errors.

One cluster serves the module: ``ray.cluster_utils.Cluster``, a head with 1 CPU plus one node
with 1 CPU, every server on 127.0.0.1 (checked), stopped at the end.
"""

from __future__ import annotations

import os

# Before Ray is imported: keep every Ray server on loopback, no token files, no usage reports.
os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")

import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import ray  # noqa: E402  (a test dependency: `make test` installs committee[ray])
import torch  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from committee.base.errors import CommitteeError
from committee.config.run_config import RunConfig
from committee.store.run_dir import RunDir
from committee.study import api as pipeline
from committee.study.ray_executor import RayExecutor
from conftest import synthetic_arrays, write_dataset  # noqa: E402

CLI = [sys.executable, "-m", "committee"]


def listening_inodes() -> dict[int, str]:
    """Listening TCP sockets of this machine that accept from outside loopback: inode -> address."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            host = local.split(":")[0]
            loopback = host in ("0100007F", "00000000000000000000000001000000")
            if state == "0A" and not loopback:
                out[inode] = local
    return out


@pytest.fixture(scope="module")
def cluster():
    before = listening_inodes()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address)
    yield c
    ray.shutdown()
    c.shutdown()
    assert set(listening_inodes()) <= set(before), "Ray left listening sockets behind"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ray-data")
    write_dataset(d, synthetic_arrays(n_train=1200, n_test=200))
    return d


def config(data_dir, members=("basic_cnn", "fast_cnn"), epochs=4, **kw) -> RunConfig:
    return RunConfig(members=members, rules=("mean",), epochs=epochs, data_dir=str(data_dir), verify=False, **kw)


def alive_nodes() -> set[str]:
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def weights(run_dir: Path, member: str) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "members" / member / "weights.safetensors"))


def local_run(cfg: RunConfig, run_dir: Path, train_only: bool = False):
    """The local backend at one thread, the thread count of a 1-CPU Ray job."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return (
            pipeline.train(cfg, run_dir, progress=False) if train_only else pipeline.run(cfg, run_dir, progress=False)
        )
    finally:
        torch.set_num_threads(threads)


def task_pid(member: str) -> int | None:
    """The Ray worker process training ``member`` right now (Ray titles it ``ray::train <member>``)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.rstrip(b"\0").startswith(f"ray::train {member}".encode()):
            return int(pid)
    return None


def wait_for(condition, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_background(fn, *args, **kw) -> tuple[threading.Thread, dict]:
    box = {}

    def target():
        try:
            box["result"] = fn(*args, **kw)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


# --- placement and equality ---------------------------------------------------------------


def test_two_members_on_two_nodes_match_the_local_backend(cluster, data_dir, tmp_path):
    cfg = config(data_dir)
    result = pipeline.run(cfg, tmp_path / "ray", progress=False, executor=RayExecutor())
    run = RunDir(tmp_path / "ray")
    placed = {m: run.member_info(m) for m in cfg.members}
    print("\nnodes per member:", {m: (i["node"][:12], i["hostname"], i["threads"]) for m, i in placed.items()})
    assert len({i["node"] for i in placed.values()}) == 2
    assert {i["node"] for i in placed.values()} <= alive_nodes()
    assert all(i["threads"] == 1 for i in placed.values())

    local = local_run(cfg, tmp_path / "local")
    for m in cfg.members:
        ray_w, local_w = weights(tmp_path / "ray", m), weights(tmp_path / "local", m)
        assert ray_w.keys() == local_w.keys()
        assert all(torch.equal(ray_w[k], local_w[k]) for k in ray_w), f"{m}: weights differ from the local backend"
        assert np.array_equal(run.member(m).probs_test, RunDir(tmp_path / "local").member(m).probs_test)
    assert [(n, e.scores("test").accuracy) for n, e in result.entries().items()] == [
        (n, e.scores("test").accuracy) for n, e in local.entries().items()
    ]
    # Only the driver wrote the manifest, and it covers every member file.
    assert run.member(cfg.members[0]).info["name"] == cfg.members[0]
    assert (tmp_path / "ray" / "report.html").is_file()


def test_files_come_back_as_bytes_without_a_shared_filesystem(cluster, data_dir, tmp_path):
    cfg = config(data_dir, members=("shallow", "fast_cnn"), epochs=2)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the default store's kind: two workers write one database
    executor = RayExecutor(shared_filesystem=False)
    pipeline.train(cfg, tmp_path / "shipped", progress=False, executor=executor, track=f"mlflow:{uri}")
    # The workers logged their own members' epochs, nested under the driver's study run.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent = RunDir(tmp_path / "shipped").read_doc("tracking.json")["mlflow"]["run_id"]
    children = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert {r.data.tags["committee.member"] for r in children} == set(cfg.members)
    for r in children:
        assert sorted(m.step for m in client.get_metric_history(r.info.run_id, "val_acc")) == [1, 2]
    local_run(cfg, tmp_path / "local", train_only=True)
    for m in cfg.members:
        assert RunDir(tmp_path / "shipped").is_finished(m)
        shipped, local = weights(tmp_path / "shipped", m), weights(tmp_path / "local", m)
        assert all(torch.equal(shipped[k], local[k]) for k in shipped)
    # The manifest verifies the shipped files: a flipped byte is refused.
    probs = tmp_path / "shipped" / "members" / "shallow" / "probs_val.npy"
    data = bytearray(probs.read_bytes())
    data[-1] ^= 1
    probs.write_bytes(bytes(data))
    with pytest.raises(CommitteeError, match="checksum"):
        RunDir(tmp_path / "shipped").member("shallow")


def test_own_data_ships_to_the_cluster(cluster, tmp_path):
    """An .npz that exists only on the driver: RGB 16x16, three classes."""
    rng = np.random.default_rng(0)
    y = np.arange(240) % 3
    x = rng.integers(0, 50, (240, 16, 16, 3), dtype=np.uint8)
    for i, k in enumerate(y):
        x[i, 4:12, 4:12, k] = 220
    np.savez(
        tmp_path / "own.npz",
        x_train=x[:180],
        y_train=y[:180],
        x_test=x[180:],
        y_test=y[180:],
        class_names=np.array(["red", "green", "blue"]),
    )
    cfg = RunConfig(members=("shallow", "fast_cnn"), rules=("mean",), epochs=2, data=str(tmp_path / "own.npz"))
    result = pipeline.run(cfg, tmp_path / "run", progress=False, executor=RayExecutor())
    run = RunDir(tmp_path / "run")
    assert run.class_names() == ["red", "green", "blue"] and run.input_shape() == (3, 16, 16)
    assert {run.member_info(m)["model_kwargs"]["in_channels"] for m in cfg.members} == {3}
    assert result.accuracy("committee:mean") > 0.9


# --- faults ----------------------------------------------------------------------------------


def test_a_killed_worker_is_retried_and_the_member_matches_an_uninterrupted_one(cluster, data_dir, tmp_path):
    cfg = config(data_dir, members=("basic_cnn",), epochs=12)
    history = tmp_path / "ray" / "members" / "basic_cnn" / "history.csv"
    thread, box = in_background(pipeline.train, cfg, tmp_path / "ray", progress=False, executor=RayExecutor())
    wait_for(lambda: history.exists() and len(history.read_text().splitlines()) >= 3, what="two epochs")
    pid = wait_for(lambda: task_pid("basic_cnn"), what="the worker")
    os.kill(pid, signal.SIGKILL)
    thread.join(240)
    assert "error" not in box, box.get("error")
    info = RunDir(tmp_path / "ray").member_info("basic_cnn")
    assert info["epochs_run"] == 12
    local_run(cfg, tmp_path / "local", train_only=True)
    ray_w, local_w = weights(tmp_path / "ray", "basic_cnn"), weights(tmp_path / "local", "basic_cnn")
    assert all(torch.equal(ray_w[k], local_w[k]) for k in ray_w), "the retried member differs from an uninterrupted one"


def test_a_job_that_raises_is_reported_and_the_others_finish(cluster, data_dir, tmp_path):
    cfg = config(data_dir, members=("shallow", "fast_cnn"), epochs=2)
    run_dir = tmp_path / "run"
    (run_dir / "members").mkdir(parents=True)
    (run_dir / "members" / "fast_cnn").write_text("a file where the member's directory should be")
    with pytest.raises(CommitteeError, match=r"1 of 2 job\(s\) failed.*fast_cnn.*not a directory"):
        pipeline.train(cfg, run_dir, progress=False, executor=RayExecutor())
    assert RunDir(run_dir).is_finished("shallow")
    assert not RunDir(run_dir).is_finished("fast_cnn")


def test_a_worker_that_cannot_import_a_users_module_fails_only_that_job(
    cluster, data_dir, tmp_path, monkeypatch, clean_registry
):
    """The module imports in the driver but raises in any other process: its member's job fails with the
    module's one-line reason; the registry member finishes."""
    module = tmp_path / "driveronly.py"
    module.write_text(
        "import os\nfrom torch import nn\nimport committee\n"
        "if os.getpid() != int(os.environ['DRIVER_PID']):\n    raise ImportError('not on this worker')\n"
        "def net(in_channels, image_size, n_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, n_classes))\n"
        "committee.register_model('drivernet', net)\n"
    )
    monkeypatch.setenv("DRIVER_PID", str(os.getpid()))
    cfg = config(data_dir, members=("shallow", "drivernet"), epochs=1, imports=(str(module),))
    run_dir = tmp_path / "run"
    with pytest.raises(CommitteeError, match=r"1 of 2 job\(s\) failed.*drivernet: --import .*driveronly.py: importing"):
        pipeline.train(cfg, run_dir, progress=False, executor=RayExecutor())
    assert RunDir(run_dir).is_finished("shallow") and not RunDir(run_dir).is_finished("drivernet")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_cli_runs_a_study_on_the_cluster_and_resumes_after_the_driver_is_killed(cluster, data_dir, tmp_path, sig):
    run_dir = tmp_path / "cli"
    base = CLI + [
        "train",
        "--run-dir",
        str(run_dir),
        "--data-dir",
        str(data_dir),
        "--no-verify",
        "--quiet",
        "--backend",
        "ray",
        "--address",
        cluster.address,
    ]
    driver = subprocess.Popen(
        base + ["--members", "shallow,basic_cnn", "--epochs", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    member_json = run_dir / "members" / "shallow" / "member.json"
    history = run_dir / "members" / "basic_cnn" / "history.csv"
    wait_for(lambda: member_json.exists() and history.exists(), what="shallow to finish")
    finished_bytes = member_json.read_bytes()
    driver.send_signal(sig)
    driver.wait(30)
    if sig == signal.SIGTERM:  # stopped cleanly, with the way to go on (not Ray's own SIGTERM stack dump)
        assert driver.returncode == 130, driver.stderr.read()
        assert f"--backend ray --address {cluster.address} --resume" in driver.stderr.read()
    assert not RunDir(run_dir).is_finished("basic_cnn")

    resumed = subprocess.run(base + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished shallow; to train basic_cnn" in resumed.stderr
    assert "ray: 1 job(s)" in resumed.stderr
    assert member_json.read_bytes() == finished_bytes  # the finished member was not trained again
    assert RunDir(run_dir).member_info("basic_cnn")["epochs_run"] == 30

    report = subprocess.run(CLI + ["evaluate", "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr


@pytest.mark.parametrize(
    "flags, code, message",
    [
        (["--backend", "ray", "--address", "127.0.0.1:1"], 1, "cannot reach a Ray cluster at 127.0.0.1:1"),
        (["--backend", "ray", "--address", "nonsense"], 2, "expected HOST:PORT"),
        (
            ["--backend", "ray", "--address", "{cluster}", "--cpus-per-job", "4"],
            2,
            "no node of the Ray cluster can run one job",
        ),
        (["--backend", "local", "--address", "127.0.0.1:6379"], 2, "--address is for --backend ray only"),
    ],
)
def test_bad_setup_is_one_line(cluster, data_dir, tmp_path, flags, code, message):
    flags = [f.format(cluster=cluster.address) for f in flags]
    out = subprocess.run(
        CLI
        + [
            "train",
            "--run-dir",
            str(tmp_path / "r"),
            "--data-dir",
            str(data_dir),
            "--no-verify",
            "--members",
            "shallow",
            "--epochs",
            "1",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == code, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_removing_a_node_mid_run_reschedules_its_job(cluster, data_dir, tmp_path):
    """Last in the module: it takes the second node away (and puts a fresh one back)."""
    cfg = config(data_dir, members=("basic_cnn", "fast_cnn"), epochs=12)
    (worker_node,) = cluster.worker_nodes
    thread, box = in_background(pipeline.train, cfg, tmp_path / "run", progress=False, executor=RayExecutor())
    pids = wait_for(
        lambda: all(task_pid(m) for m in cfg.members) and {m: task_pid(m) for m in cfg.members},
        what="both jobs running",
    )
    on_worker = [m for m, pid in pids.items() if pid in _descendants(worker_node)]
    assert len(on_worker) == 1, f"expected one job per node, got {pids}"
    cluster.remove_node(worker_node)
    thread.join(240)
    assert "error" not in box, box.get("error")
    run = RunDir(tmp_path / "run")
    assert all(run.member_info(m)["epochs_run"] == 12 for m in cfg.members)
    assert run.member_info(on_worker[0])["node"] == cluster.head_node.node_id  # rescheduled on the node left
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()


def _descendants(node) -> set[int]:
    """PIDs of a cluster node's raylet and everything under it."""
    raylet = node.all_processes["raylet"][0].process.pid
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    seen, todo = set(), [raylet]
    while todo:
        p = todo.pop()
        seen.add(p)
        todo += children.get(p, [])
    return seen


# --- without a cluster ---------------------------------------------------------------------------


def _cli_in_subprocess(code: str, tmp_path, data_dir) -> str:
    """A script running `committee train` on one tiny member after ``code``; it says whether Ray got imported."""
    script = (
        "import sys\n" + code + "\nfrom committee.cli import main\n"
        f"rc = main(['train', '--run-dir', {str(tmp_path / 'r')!r}, '--data-dir', {str(data_dir)!r}, '--no-verify', "
        "'--members', 'shallow', '--epochs', '1', '--quiet', *sys.argv[1:]])\n"
        "print('ray imported' if 'ray' in sys.modules else 'ray not imported')\nsys.exit(rc)\n"
    )
    return script


def test_the_local_backend_never_imports_ray(data_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _cli_in_subprocess("", tmp_path, data_dir)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "ray not imported" in out.stdout


def test_ray_not_installed_says_how_to_install_it(data_dir, tmp_path):
    hide_ray = "sys.modules['ray'] = None  # as if Ray were not installed"
    out = subprocess.run(
        [sys.executable, "-c", _cli_in_subprocess(hide_ray, tmp_path, data_dir), "--backend", "ray"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert (
        out.stderr.strip().splitlines()[-1]
        == "committee: error: the Ray backend needs Ray: pip install 'committee[ray]'"
    )
