"""Experiment tracking, opt-in: MLflow or TensorBoard, with the tools ML engineers already run.

``--track mlflow`` (MLflow's own default store: the SQLite database ``./mlflow.db`` of the directory
the command runs in, artifacts under ``./mlruns/<experiment>``, so ``mlflow ui`` there opens it with no option),
``--track mlflow:URI`` (a tracking server or any store MLflow takes), ``--track tensorboard`` (event
files in ``RUN_DIR/tensorboard/<member>``).

MLflow: one run per study, a nested run per member (``mlflow.parentRunId``), found again by
``--resume`` (the ids are kept in the run's ``tracking.json``; a member's metric steps are its
epochs, and a resumed member logs only the epochs its run does not have yet, so no step is
duplicated). Parameters: the config; per-epoch metrics: train/validation loss and accuracy,
learning rate, images/s; tags: CPU, threads, torch version, precision; artifacts at the end:
metrics.json, report.html, report.md, MODEL_CARD.md, plan.json, config.json and the figures.
We use :class:`mlflow.tracking.MlflowClient` with explicit run ids, never MLflow's global active
run, so Ray workers and threads log without sharing state.

A tracking failure in the middle of a run (a full disk, a server gone) warns once and training
goes on; an MLflow server that cannot be reached at the start is an error before any training.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from committee.base.errors import CommitteeError
from committee.base.machine import environment
from committee.config.run_config import RunConfig
from committee.store.run_dir import RunDir
from committee.training.callbacks import TrainingCallback

EXTRAS = {"mlflow": "mlflow", "tensorboard": "tensorboard"}
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
EXPERIMENT = "committee"


@dataclass(frozen=True)
class TrackingSpec:
    """Where a study logs; plain strings, so it travels to a Ray worker."""

    kind: str  # mlflow | tensorboard
    target: str  # the MLflow tracking URI, or the TensorBoard log folder
    experiment_id: str = ""
    parent_run_id: str = ""
    label: str = ""  # put before member names (a seed of --seeds: "seed-1/")


DEFAULT_DB = "mlflow.db"  # MLflow's own default since 3.7 (its file store is in maintenance mode)
# MLflow's notes while it creates a new database ("Creating initial MLflow database tables...").
QUIET_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")


def default_store() -> str:
    """``sqlite:////abs/cwd/mlflow.db``: absolute, so Ray workers in other folders log to the same database."""
    return "sqlite:///" + str(Path(DEFAULT_DB).resolve())


def kind_and_uri(track: str) -> tuple[str, str | None]:
    """``mlflow`` -> (mlflow, ./mlflow.db as a SQLite URI); ``mlflow:URI`` -> (mlflow, URI); ``tensorboard``: no URI."""
    if track == "tensorboard":
        return "tensorboard", None
    if track == "mlflow":
        return "mlflow", default_store()
    if track.startswith("mlflow:"):
        return "mlflow", track.removeprefix("mlflow:")
    raise CommitteeError(f"--track {track!r}: use mlflow, mlflow:URI or tensorboard")


def require(kind: str) -> None:
    """One line naming the extra when its package is missing."""
    module = {"mlflow": "mlflow", "tensorboard": "tensorboard"}[kind]
    try:
        __import__(module)
    except ImportError:
        raise CommitteeError(f"--track {kind} needs {EXTRAS[kind]}: pip install 'committee[{kind}]'") from None


def mlflow_client(uri: str):
    """An MlflowClient for ``uri`` that fails fast: no retries, short timeouts (a server that is down
    must not hold the run for minutes). A file store (``mlflow:file:...``, asked for by name) is
    allowed in this process only: MLflow 3 keeps it in maintenance mode, so ``mlflow ui`` on it
    needs ``MLFLOW_ALLOW_FILE_STORE=true``; our default is the SQLite store, which needs nothing."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def flat_params(cfg: RunConfig) -> dict[str, str]:
    """The config as MLflow parameters: scalars as they are, lists and dicts as JSON (500 characters at most)."""
    out = {}
    for key, value in cfg.to_dict().items():
        text = json.dumps(value, sort_keys=True) if isinstance(value, list | dict | tuple) else str(value)
        out[key] = text[:500]
    return out


def start_study(track: str, cfg: RunConfig, run: RunDir, label: str = "") -> TrackingSpec:
    """Driver side, before any training: check the extra, reach the store, create (or, if the run
    directory has one, continue) the study's MLflow run and log its parameters and tags."""
    kind, uri = kind_and_uri(track)
    require(kind)
    if kind == "tensorboard":
        return TrackingSpec(kind, str(run.path / "tensorboard"), label=label)
    client = mlflow_client(uri)
    try:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
        known = (run.read_doc("tracking.json") or {}).get("mlflow", {})
        if known.get("uri") == uri and known.get("run_id"):
            run_id = known["run_id"]
            client.update_run(run_id, status="RUNNING")
        else:
            env = environment(cfg.device)
            tags = {
                "committee.cpu": env["cpu"],
                "committee.threads": str(env["threads"]),
                "committee.torch": env["torch"],
                "committee.run_dir": str(run.path.resolve()),
            }
            run_id = client.create_run(experiment_id, run_name=run.path.name, tags=tags).info.run_id
            log_params(client, run_id, flat_params(cfg))
            run.write_doc("tracking.json", {"mlflow": {"uri": uri, "experiment_id": experiment_id, "run_id": run_id}})
    except CommitteeError:
        raise
    except Exception as exc:  # noqa: BLE001 -- any failure to reach the store is the same one line
        raise CommitteeError(f"--track {track}: cannot use the MLflow tracking store {uri}: {one_line(exc)}") from None
    return TrackingSpec(kind, uri, experiment_id, run_id, label)


def log_params(client, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), 100):  # MLflow takes at most 100 parameters per batch
        client.log_batch(run_id, params=items[i : i + 100])


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class Guarded(TrainingCallback):
    """Runs a tracker's hooks; the first failure warns once and turns the tracker off (training goes on)."""

    def __init__(self, tracker: TrainingCallback, what: str):
        self.tracker, self.what, self.failed = tracker, what, False

    def call(self, hook: str, *args) -> None:
        if self.failed:
            return
        try:
            getattr(self.tracker, hook)(*args)
        except Exception as exc:  # noqa: BLE001 -- tracking must never cost the training
            self.failed = True
            warnings.warn(
                f"tracking to {self.what} failed ({one_line(exc)}); training goes on without it", stacklevel=2
            )

    def member_start(self, t) -> None:
        self.call("member_start", t)

    def epoch_end(self, t, row: dict) -> None:
        self.call("epoch_end", t, row)

    def member_end(self, t, info: dict) -> None:
        self.call("member_end", t, info)


class MlflowMember(TrainingCallback):
    """One member's nested MLflow run: found again on resume, so its steps continue."""

    def __init__(self, spec: TrackingSpec):
        self.spec = spec
        self.client = mlflow_client(spec.target)
        self.run_id = ""
        self.logged = 0  # the last epoch this member's MLflow run has

    def member_start(self, t) -> None:
        name = self.spec.label + t.name
        query = f"tags.mlflow.parentRunId = '{self.spec.parent_run_id}' and tags.`committee.member` = '{name}'"
        found = self.client.search_runs([self.spec.experiment_id], filter_string=query, max_results=1)
        if found:
            self.run_id = found[0].info.run_id
            steps = self.client.get_metric_history(self.run_id, "val_acc")
            self.logged = max((m.step for m in steps), default=0)
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            tags = {
                "mlflow.parentRunId": self.spec.parent_run_id,
                "committee.member": name,
                "committee.arch": t.spec.name,
                "committee.precision": t.precision,
            }
            self.run_id = self.client.create_run(self.spec.experiment_id, run_name=name, tags=tags).info.run_id
            log_params(self.client, self.run_id, {k: str(v)[:500] for k, v in t.opts.recipe().items()})
        for row in t.history:  # epochs a killed run checkpointed but did not log
            self.epoch_end(t, row)

    def epoch_end(self, t, row: dict) -> None:
        from mlflow.entities import Metric

        if row["epoch"] <= self.logged:
            return
        stamp = int(1000 * time.time())
        values = {**{k: row[k] for k in METRICS}, "images_per_s": len(t.x_train) / row["seconds"]}
        metrics = [Metric(k, float(v), stamp, row["epoch"]) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.logged = row["epoch"]

    def member_end(self, t, info: dict) -> None:
        self.client.set_tag(self.run_id, "committee.best_epoch", str(info["best_epoch"]))
        self.client.log_metric(self.run_id, "best_val_acc", info["best_val_acc"])
        self.client.set_terminated(self.run_id, "FINISHED")


class TensorBoardMember(TrainingCallback):
    """One member's scalars under ``<log dir>/<member>`` (steps: epochs; a resumed member appends)."""

    def __init__(self, spec: TrackingSpec):
        self.spec = spec
        self.writer = None

    def member_start(self, t) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(self.spec.target) / (self.spec.label + t.name)))

    def epoch_end(self, t, row: dict) -> None:
        for key in METRICS:
            self.writer.add_scalar(key, row[key], row["epoch"])
        self.writer.add_scalar("images_per_s", len(t.x_train) / row["seconds"], row["epoch"])
        self.writer.flush()

    def member_end(self, t, info: dict) -> None:
        self.writer.close()


def member_tracker(spec: TrackingSpec | None) -> list[TrainingCallback]:
    """Worker side: the callbacks that log one member (none without tracking)."""
    if spec is None:
        return []
    tracker = MlflowMember(spec) if spec.kind == "mlflow" else TensorBoardMember(spec)
    return [Guarded(tracker, f"{spec.kind} {spec.target}")]


def finish_study(spec: TrackingSpec | None, run: RunDir) -> None:
    """After the report: MLflow gets the run's files as artifacts and its run is finished; TensorBoard
    gets the confusion matrix and reliability diagram as images. A failure warns (the run is done)."""
    if spec is None:
        return
    try:
        if spec.kind == "mlflow":
            client = mlflow_client(spec.target)
            for name in ("metrics.json", "report.html", "report.md", "MODEL_CARD.md", "plan.json", "config.json"):
                if run.file(name).exists():
                    client.log_artifact(spec.parent_run_id, str(run.file(name)))
            for path in run.figure_paths():
                client.log_artifact(spec.parent_run_id, str(path), "figures")
            client.set_terminated(spec.parent_run_id, "FINISHED")
        else:
            tensorboard_images(spec, run)
    except Exception as exc:  # noqa: BLE001 -- the run's own files are written; tracking only mirrors them
        warnings.warn(f"tracking to {spec.kind} {spec.target} failed at the end ({one_line(exc)})", stacklevel=2)


def tensorboard_images(spec: TrackingSpec, run: RunDir) -> None:
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(Path(spec.target) / (spec.label + "committee"))) as writer:
        for path in run.figure_paths():
            if path.stem.startswith(("confusion", "reliability")):
                image = np.asarray(Image.open(path).convert("RGB"))
                writer.add_image(path.stem, image, 0, dataformats="HWC")
