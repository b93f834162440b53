"""The Ray executor (``--backend ray``): every training job a Ray task, on one machine or a cluster.

    import committee
    from committee.study.ray_executor import RayExecutor
    committee.run(cfg, "runs/x", executor=RayExecutor(address="auto"))

One Ray core task per :class:`~committee.study.jobs.TrainJob` (member x seed x ablation
variant). The driver (this process):

- ships the dataset once with ``ray.put``: it was loaded and SHA-256-verified here, so worker
  machines need no copy of it and no internet, and every job reads the same bytes (measured in
  ``benchmarks/ray_overhead.py``: getting it from the object store is faster than each worker
  decompressing and verifying the IDX files);
- submits all jobs, collects them in completion order with ``ray.wait`` and writes each member's
  files as it lands, so a driver killed later loses nothing that finished;
- leaves committee rules, evaluation and the report to the pipeline, which runs them here, from
  the run directory, exactly as for the local backend.

Where a worker sees the run directory (same path, same config.json digest: a shared filesystem,
or this machine) it trains in place; its checkpoint there lets a retried task (worker process or
node died) continue from the last finished epoch. Elsewhere it trains in a scratch directory and
returns the member's files as bytes, and a retry starts the member over. Either way only the
driver writes manifest.json.

Ray is imported only when a job is run, so the local backend never imports it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from committee.base.console import log
from committee.base.errors import CommitteeError, UsageError
from committee.data.sources import load_cached
from committee.store.run_dir import RunDir
from committee.study.jobs import JobResult, TrainJob, run_job
from committee.training.eta import clock_text, jobs_eta
from committee.training.snapshots import job_members

RAY_MISSING = "the Ray backend needs Ray: pip install 'committee[ray]'"


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a ``host:port`` address, or None for "auto" and ``ray://`` addresses."""
    if address == "auto" or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    return host, int(port)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in one line, at once, where ray.init would retry for a minute against a closed port."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as exc:
        raise CommitteeError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); "
            f"start one with `ray start --head` or check --address"
        ) from None


def import_ray(loopback: bool):
    """Import Ray, or say in one line how to install it.

    loopback: the cluster is on this machine; Ray's servers (and this driver's) then listen on
    127.0.0.1 only. Ray reads that switch when it is imported, so an earlier import keeps its own.
    """
    if loopback:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no traffic to Ray's usage server
    os.environ.setdefault("RAY_COLOR_PREFIX", "1" if sys.stderr.isatty() else "0")  # no escape codes in log files
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


def pack_dataset(dataset) -> object:
    """The dataset with numpy arrays, which Ray stores once and workers on a node map without copying."""
    return dataclasses.replace(dataset, images=dataset.images.numpy(), labels=dataset.labels.numpy())


def unpack_dataset(packed) -> object:
    import numpy as np
    import torch

    # A private copy: the object store's arrays are read-only.
    return dataclasses.replace(
        packed, images=torch.from_numpy(np.array(packed.images)), labels=torch.from_numpy(np.array(packed.labels))
    )


def _train_task(job: TrainJob, packed_dataset, digest: str, shared: bool | None, threads: int) -> dict:
    """One job on a Ray worker; returns member.json, the wall seconds, and the member's files unless
    they were written in place."""
    import tempfile

    import ray
    import torch

    torch.set_num_threads(threads)
    placement = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}
    dataset = unpack_dataset(packed_dataset)
    in_place = shared is not False and RunDir(job.run_dir).digest() == digest
    if shared and not in_place:
        raise CommitteeError(f"{placement['hostname']} does not see {job.run_dir} (no shared filesystem there)")
    if in_place:
        # resume=True: on a retry, go on from the killed attempt's checkpoint (the driver removed
        # any older checkpoint before submitting a fresh job).
        result = run_job(job, dataset, RunDir(job.run_dir, keeps_manifest=False), placement, resume=True)
        return {"info": result.info, "seconds": result.seconds, "files": None}
    with tempfile.TemporaryDirectory(prefix="committee-job-") as scratch:
        run = RunDir(scratch)
        result = run_job(job, dataset, run, placement, resume=False)
        members = job_members(job.config, job.member)  # a snapshot run writes K members
        return {"info": result.info, "seconds": result.seconds, "files": {m: run.member_files(m) for m in members}}


def _failure(exc: BaseException) -> str:
    """One line for a failed task: the job's own error where it raised one, else what Ray says."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, CommitteeError):
        return str(cause)
    if cause is not None:
        return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@dataclass
class RayExecutor:
    """Runs jobs as Ray tasks (see the module docstring).

    address: ``HOST:PORT`` of a running cluster, or ``"auto"``; None: ``$RAY_ADDRESS``, else a
    private Ray on this machine with ``cpus`` CPUs (default: all), stopped afterwards.
    cpus_per_job: CPUs reserved per job, and its torch threads. shared_filesystem: None lets each
    worker check whether it sees the run directory; False always ships files back; True requires it.
    """

    address: str | None = None
    cpus: int | None = None
    cpus_per_job: float = 1
    gpus_per_job: float = 0
    memory_per_job: float | None = None  # GiB
    max_retries: int = 2
    shared_filesystem: bool | None = None
    progress: bool | None = None  # the jobs bar: None on a terminal only

    def __post_init__(self) -> None:
        if self.cpus_per_job <= 0:
            raise UsageError(f"--cpus-per-job must be positive, got {self.cpus_per_job}")
        if self.address is not None:
            _host_port(self.address)

    # --- the cluster -----------------------------------------------------------------

    def connect(self):
        """Join the cluster (or start a private one); returns (ray, whether we started it)."""
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        hp = _host_port(address) if address else None
        if address:
            _check_reachable(address)
        ray = import_ray(loopback=address is None or (hp is not None and hp[0] in LOOPBACK_HOSTS))
        if ray.is_initialized():  # the caller's own ray.init
            return ray, False
        quiet = {"include_dashboard": False, "log_to_driver": True, "logging_level": "warning"}
        # ray.init puts in its own SIGTERM handler (a stack dump, exit 1); keep ours, which stops
        # as cleanly as Ctrl-C: pending jobs cancelled, a private Ray shut down, the --resume hint.
        main_thread = threading.current_thread() is threading.main_thread()
        sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(address="local", num_cpus=self.cpus or os.cpu_count() or 1, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise CommitteeError(f"cannot connect to {where}: {str(exc).strip().splitlines()[0]}") from None
        finally:
            if sigterm is not None:
                signal.signal(signal.SIGTERM, sigterm)
        return ray, True

    def check_resources(self, ray) -> dict[str, float]:
        """Refuse a cluster on which no node can hold one job; returns the cluster's totals."""
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        need = {"CPU": self.cpus_per_job, "GPU": self.gpus_per_job, "memory": (self.memory_per_job or 0) * 2**30}
        for key, flag in (("CPU", "--cpus-per-job"), ("GPU", "--gpus-per-job"), ("memory", "--memory-per-job")):
            largest = max((n.get(key, 0.0) for n in nodes), default=0.0)
            if need[key] > largest:
                have = f"{largest / 2**30:.1f} GiB" if key == "memory" else f"{largest:g}"
                raise UsageError(
                    f"no node of the Ray cluster can run one job: {flag} asks for "
                    f"{need[key] / 2**30 if key == 'memory' else need[key]:g}, the largest node has {have}"
                )
        return ray.cluster_resources()

    # --- running jobs ------------------------------------------------------------------

    def run(self, jobs: list[TrainJob]) -> Iterator[JobResult]:
        jobs = list(jobs)
        if not jobs:
            return
        from tqdm import tqdm

        start = time.perf_counter()
        ray, started = self.connect()
        try:
            totals = self.check_resources(ray)
            log(
                f"ray: {len(jobs)} job(s) on {len(ray.nodes())} node(s), {totals.get('CPU', 0):g} CPUs, "
                f"{self.cpus_per_job:g} CPU(s) per job, up to {self.max_retries} retries "
                f"({time.perf_counter() - start:.1f} s to connect)"
            )
            task = ray.remote(_train_task)
            # SPREAD: jobs go to different machines while there are free ones, not packed onto the head.
            options = {
                "num_cpus": self.cpus_per_job,
                "num_gpus": self.gpus_per_job,
                "max_retries": self.max_retries,
                "scheduling_strategy": "SPREAD",
            }
            if self.memory_per_job:
                options["memory"] = int(self.memory_per_job * 2**30)
            shipped, submitted = {}, {}
            for job in jobs:
                key = job.config.data_spec()
                if key not in shipped:  # once per dataset (all seeds and variants share one)
                    shipped[key] = ray.put(pack_dataset(load_cached(job.config.data_spec())))
                run = RunDir(job.run_dir)
                if not job.resume:
                    run.discard_checkpoint(job.member)  # a fresh job must not continue an older attempt
                remote_job = dataclasses.replace(job, run_dir=job.run_dir.resolve(), progress=False)
                ref = task.options(name=f"train {job.member}", **options).remote(
                    remote_job, shipped[key], run.digest(), self.shared_filesystem, max(1, int(self.cpus_per_job))
                )
                submitted[ref] = job
            slots = max(1, int(totals.get("CPU", 1) // self.cpus_per_job))
            yield from self._collect(ray, submitted, tqdm, slots)
        finally:
            if started:
                try:
                    ray.shutdown()
                except Exception as exc:  # a failed shutdown must not replace the real outcome (an interrupt)
                    log(f"ray: shutdown failed ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})")

    def _running(self, ray, pending: int) -> int:
        """Jobs running now, from the CPUs in use (the cluster's other users count too)."""
        in_use = ray.cluster_resources().get("CPU", 0) - ray.available_resources().get("CPU", 0)
        return min(pending, round(in_use / self.cpus_per_job))

    def _collect(self, ray, submitted: dict, tqdm, slots: int = 1) -> Iterator[JobResult]:
        """Jobs in completion order: write each member as it lands; failures at the end, in one line.
        After each, the study's elapsed time and what is left: jobs left x mean job time / slots."""
        pending, failed, durations, start = list(submitted), [], [], time.perf_counter()
        bar = tqdm(total=len(pending), unit="job", desc="jobs", file=sys.stderr, disable=self.progress is False or None)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=2.0)
                if not done:  # nothing finished yet: refresh the running count
                    bar.set_postfix(
                        running=self._running(ray, len(pending)), queued_or_running=len(pending), failed=len(failed)
                    )
                    continue
                job = submitted[done[0]]
                label = f"{job.run_dir.name}/{job.member}"
                try:
                    out = ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    failed.append(f"{label}: {_failure(exc)}")
                    log(f"ray: job {label} failed: {_failure(exc)}")
                else:
                    run = RunDir(job.run_dir)
                    for member in job_members(job.config, job.member):
                        if out["files"] is None:
                            run.record_member(member)
                        else:
                            run.import_member(member, out["files"][member])
                    info = out["info"]
                    durations.append(out["seconds"])
                    left = jobs_eta(
                        len(submitted) - len(pending), len(submitted), sum(durations) / len(durations), slots
                    )
                    log(
                        f"ray: {label} done on {info['hostname']} (node {info['node'][:8]}) in {out['seconds']:.1f} s; "
                        f"{len(submitted) - len(pending)}/{len(submitted)} finished or failed; study "
                        f"{clock_text(time.perf_counter() - start)}, ~{clock_text(left)} left ({slots} slots)"
                    )
                    yield JobResult(job, info, out["seconds"])
                bar.update(1)
                bar.set_postfix(
                    running=self._running(ray, len(pending)), queued_or_running=len(pending), failed=len(failed)
                )
        except (KeyboardInterrupt, GeneratorExit):
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
        if failed:
            raise CommitteeError(
                f"{len(failed)} of {len(submitted)} job(s) failed (finished members are saved; "
                f"rerun with --resume for the rest): " + "; ".join(failed)
            )


__all__ = ["RayExecutor", "import_ray", "RAY_MISSING"]
