"""The Ray backend on this machine: start-up overhead, data shipping, and local vs Ray wall time.

Three measurements, one sitting (do not time anything else beside it):

1. overhead: a private ``--backend ray`` and a two-node loopback cluster, from nothing to the
   end of a member's first epoch, split into connect (or cluster start), shipping the dataset,
   and task start-up (worker process, imports) — against the same member trained locally.
2. data in: each worker loading the dataset itself (gunzip + SHA-256 + parse, the existing
   loader) vs fetching the array the driver shipped once with ``ray.put``.
3. wall: ``committee run`` with ``--backend local`` (one job after another, 2 threads) and
   ``--backend ray`` on the two-node loopback cluster (1 CPU per node, 1 thread per job), side
   by side, plus each member's training images/s at 1 and 2 threads (what predicts the gain on
   a cluster of N machines).

    .venv/bin/python benchmarks/ray_scaling.py --out benchmarks/results --runs-dir /tmp/ray-bench
    .venv/bin/python benchmarks/ray_scaling.py --skip-wall ...   # parts 1 and 2 only (a minute)
"""

from __future__ import annotations

import os

os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from committee.base.fileio import write_json
from committee.base.machine import environment
from committee.config.run_config import RunConfig


def first_epoch_task(job, packed, t_submit: float) -> dict:
    """A member's first epoch on a worker; the times it saw (wall clock, comparable across processes)."""
    import tempfile

    from committee.data.splits import make_splits
    from committee.store.run_dir import RunDir
    from committee.study.ray_executor import unpack_dataset
    from committee.training.loop import run_epoch, setup_member

    t_start = time.time()
    torch.set_num_threads(1)
    ds = unpack_dataset(packed)
    t_data = time.time()
    cfg = job.config
    with tempfile.TemporaryDirectory() as d:
        t = setup_member(job.member, ds, make_splits(ds, cfg.split, cfg.seed, cfg.limit_train), cfg, RunDir(d))
        run_epoch(t, RunDir(d), progress=False)
    return {
        "task_start": t_start - t_submit,
        "data": t_data - t_start,
        "epoch_done": time.time() - t_submit,
        "epoch": t.history[0]["seconds"],
    }


def load_in_worker(data_dir: str | None) -> dict:
    from committee.data.fashion_mnist import load_dataset

    torch.set_num_threads(1)
    start = time.perf_counter()
    load_dataset(data_dir, verify=True, allow_download=False)
    return {"seconds": time.perf_counter() - start}


def fetch_in_worker(packed) -> dict:
    from committee.study.ray_executor import unpack_dataset

    start = time.perf_counter()
    unpack_dataset(packed)  # ray.get happened when the argument was resolved: time that too, below
    return {"unpack_seconds": time.perf_counter() - start}


def overhead(ray, how: str, member: str, cfg: RunConfig) -> dict:
    """Nothing -> connected -> dataset shipped -> first epoch done, for a private Ray or a 2-node cluster."""
    from committee.data.sources import load_cached
    from committee.study.jobs import TrainJob
    from committee.study.ray_executor import RayExecutor, pack_dataset

    t0 = time.perf_counter()
    cluster = None
    if how == "private":
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning")
    else:
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="warning")
    connect = time.perf_counter() - t0
    RayExecutor().check_resources(ray)
    t1 = time.perf_counter()
    ref = ray.put(pack_dataset(load_cached(cfg.data_spec())))
    put = time.perf_counter() - t1
    t_submit = time.time()
    times = ray.get(
        ray.remote(first_epoch_task).options(num_cpus=1).remote(TrainJob(Path("unused"), member, cfg), ref, t_submit)
    )
    total = time.perf_counter() - t0
    # Data in: the loader in a worker vs the shipped array.
    t2 = time.perf_counter()
    loaded = ray.get(ray.remote(load_in_worker).options(num_cpus=1).remote(cfg.data_dir))
    load_wall = time.perf_counter() - t2
    t3 = time.perf_counter()
    fetched = ray.get(ray.remote(fetch_in_worker).options(num_cpus=1).remote(ref))
    fetch_wall = time.perf_counter() - t3
    ray.shutdown()
    if cluster is not None:
        cluster.shutdown()
    return {
        "how": how,
        "member": member,
        "connect_or_start_s": connect,
        "ship_dataset_s": put,
        "task_start_s": times["task_start"],
        "unpack_s": times["data"],
        "first_epoch_s": times["epoch"],
        "start_to_first_epoch_s": total,
        "overhead_s": total - times["epoch"],
        "data_in": {
            "loader_in_worker_s": loaded["seconds"],
            "loader_task_wall_s": load_wall,
            "shipped_unpack_s": fetched["unpack_seconds"],
            "shipped_task_wall_s": fetch_wall,
        },
    }


def local_first_epoch(member: str, cfg: RunConfig) -> dict:
    """The same first epoch in this process (no Ray): loading the dataset, then one epoch."""
    import tempfile

    from committee.data.fashion_mnist import load_dataset
    from committee.data.splits import make_splits
    from committee.store.run_dir import RunDir
    from committee.training.loop import run_epoch, setup_member

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ds = load_dataset(cfg.data_dir, verify=True)
    with tempfile.TemporaryDirectory() as d:
        t = setup_member(member, ds, make_splits(ds, cfg.split, cfg.seed, cfg.limit_train), cfg, RunDir(d))
        run_epoch(t, RunDir(d), progress=False)
    torch.set_num_threads(threads)
    return {"start_to_first_epoch_s": time.perf_counter() - t0, "first_epoch_s": t.history[0]["seconds"]}


def thread_scaling(members: list[str]) -> dict:
    """Training images/s of each member at 1 and 2 threads (our engine's step, real images)."""
    from committee.data.fashion_mnist import load_dataset
    from committee.training.throughput import engine_train_rate

    ds = load_dataset(None)
    images, labels = ds.images[:4096], ds.labels[:4096]
    threads, out = torch.get_num_threads(), {}
    for m in members:
        out[m] = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            out[m][f"{n}_thread"] = engine_train_rate(m, images, labels, windows=5)
        out[m]["speedup_2_over_1"] = out[m]["2_thread"] / out[m]["1_thread"]
    torch.set_num_threads(threads)
    return out


def timed_cli(args: list[str], run_dir: Path) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "committee", "run", "--run-dir", str(run_dir), "--quiet", *args],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"ray_scaling: {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1]}")
    return {"args": args, "wall_s": wall}


def accuracy(run_dir: Path, seeds: bool) -> dict:
    from committee.store.run_dir import RunDir

    runs = [RunDir(p) for p in sorted(run_dir.glob("seed-*"))] if seeds else [RunDir(run_dir)]
    return {
        str(r.path.name): {n: e.scores("test").accuracy for n, e in r.read_metrics().entries().items()} for r in runs
    }


def wall(runs_dir: Path, studies: list[list[str]]) -> list[dict]:
    import ray
    from ray.cluster_utils import Cluster

    out = []
    for study in studies:
        seeds = "--seeds" in study
        local = timed_cli(study, runs_dir / "local")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        try:
            on_ray = timed_cli([*study, "--backend", "ray", "--address", cluster.address], runs_dir / "ray")
        finally:
            ray.shutdown()
            cluster.shutdown()
        same = accuracy(runs_dir / "local", seeds) == accuracy(runs_dir / "ray", seeds)
        out.append(
            {
                "study": " ".join(study),
                "local_wall_s": local["wall_s"],
                "ray_2_nodes_wall_s": on_ray["wall_s"],
                "local_over_ray": local["wall_s"] / on_ray["wall_s"],
                "same_test_accuracies": same,
            }
        )
        print(json.dumps(out[-1]), file=sys.stderr)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--runs-dir", type=Path, default=Path("/tmp/ray-bench"))
    p.add_argument("--skip-wall", action="store_true")
    args = p.parse_args()
    import ray

    cfg = RunConfig(members=("basic_cnn",))
    doc = {
        "environment": environment("cpu"),
        "ray": ray.__version__,
        "overhead": {"local": local_first_epoch("basic_cnn", cfg)},
    }
    for how in ("private", "two_nodes"):
        doc["overhead"][how] = overhead(ray, how, "basic_cnn", cfg)
        print(json.dumps(doc["overhead"][how]), file=sys.stderr)
    doc["thread_scaling_images_per_s"] = thread_scaling(["shallow", "basic_cnn", "deep_cnn", "fast_cnn"])
    print(json.dumps(doc["thread_scaling_images_per_s"]), file=sys.stderr)
    if not args.skip_wall:
        doc["wall"] = wall(
            args.runs_dir, [["--preset", "quick"], ["--preset", "fast", "--epoch-scale", "0.25", "--seeds", "2"]]
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "ray_scaling.json", doc)
    print(f"wrote {args.out / 'ray_scaling.json'}")


if __name__ == "__main__":
    main()
