"""`run --time-limit`, and `--track mlflow|tensorboard` read back with MLflow's and TensorBoard's own readers."""

from __future__ import annotations

import json
import sys
import time
import warnings

import pytest
from tests.conftest import cli

from committee.store.run_dir import RunDir
from committee.study.tracking import Guarded
from committee.training.callbacks import TrainingCallback

DATA = ("--data-dir", "{data}", "--no-verify", "--quiet")


def data_args(directory) -> list[str]:
    return [a.format(data=directory) for a in DATA]


@pytest.mark.serial  # its wall time is the point: never beside another test
def test_time_limit_plans_the_run_and_keeps_it(synthetic_dir, tmp_path, capsys):
    code, _, err = cli(capsys, "run", "--time-limit", "soon", "--run-dir", tmp_path / "x")
    assert code == 2 and "--time-limit" in err and "150s" in err
    code, _, err = cli(capsys, "run", "--time-limit", "10m", "--epochs", "3", "--run-dir", tmp_path / "x")
    assert code == 2 and "plans the epochs" in err
    # Too short: one line naming the shortest limit that fits here (measured, then cached), exit 2.
    code, _, err = cli(capsys, "run", "--time-limit", "2s", "--run-dir", tmp_path / "short", *data_args(synthetic_dir))
    assert code == 2 and "shortest feasible limit is about" in err
    start = time.time()
    run_dir = tmp_path / "planned"
    args = ("--run-dir", run_dir, *data_args(synthetic_dir), "--json")
    code, out, err = cli(capsys, "run", "--time-limit", "20s", *args)
    wall = time.time() - start
    assert code == 0, err
    assert wall <= 20 + 5
    plan = RunDir(run_dir).read_doc("plan.json")
    chosen = plan["chosen"]
    assert chosen["family"] in ("fast", "strong") and chosen["predicted_seconds"] <= 20
    assert "plan: air1" in err and "predicted" in err  # printed before training
    cfg = RunDir(run_dir).config()
    assert cfg.members == tuple(f"air{k}" for k in range(1, chosen["members"] + 1))
    assert cfg.time_limit == 20
    for m in cfg.members:
        info = RunDir(run_dir).member_info(m)
        assert 1 <= info["epochs_run"] <= chosen["epochs"]
    assert set(plan["rates"]) == {"fast", "strong"} and plan["rates"]["fast"]["train_images_per_s"] > 0
    assert "study " in err and " left" in err  # the ETA beside each epoch's log line
    assert json.loads(out)["committees"]["mean"]["members"] == list(cfg.members)


@pytest.mark.serial  # feasible only at this machine's uncontended speed
def test_time_limit_with_a_preset_scales_its_epochs(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "quick"
    args = ("--preset", "quick", "--members", "shallow,wide_deep", "--rules", "mean")
    code, _, err = cli(capsys, "run", "--time-limit", "20s", "--run-dir", run_dir, *args, *data_args(synthetic_dir))
    assert code == 0, err
    plan = RunDir(run_dir).read_doc("plan.json")
    assert plan["mode"] == "preset quick, epochs scaled" and plan["chosen"]["epoch_scale"] > 0
    assert RunDir(run_dir).config().members == ("shallow", "wide_deep")
    epochs = plan["chosen"]["epochs"]
    assert {m: RunDir(run_dir).member_info(m)["epochs_planned"] for m in epochs}.keys() == epochs.keys()
    # quick's own epochs are 20 for shallow; the scale changed them, one factor for both
    assert epochs["shallow"] != 20 or epochs["wide_deep"] != 10


def mlflow_client(uri: str):
    import os

    if uri.startswith("file:"):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # only the tests below that ask for a file store
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def child_runs(client, parent) -> dict:
    runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {r.data.tags["committee.member"]: r for r in runs}


def clean_env() -> dict:
    """This environment without a single MLFLOW_* variable: what a user's shell has."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


# Run in a fresh process without MLFLOW_* variables: what `MlflowClient()` shows a user of the store.
READ_BACK = """
import json, sys
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
parent = client.get_run(sys.argv[2])
children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
print(json.dumps({
    "status": parent.info.status,
    "params": parent.data.params,
    "tags": parent.data.tags,
    "artifacts": sorted(a.path for a in client.list_artifacts(parent.info.run_id)),
    "figures": sorted(a.path for a in client.list_artifacts(parent.info.run_id, "figures")),
    "members": {
        c.data.tags["committee.member"]: {
            key: sorted([m.step, m.value] for m in client.get_metric_history(c.info.run_id, key))
            for key in ("val_acc", "train_loss", "train_acc", "val_loss", "lr", "images_per_s")
        }
        for c in children
    },
}))
"""


def test_mlflow_default_store_is_read_back_by_mlflows_own_client_and_server(
    synthetic_dir, tmp_path, capsys, monkeypatch
):
    """Issue 41, part 3: ``--track mlflow`` wrote a file store MLflow 3 refuses to open; now it is
    MLflow's own default, ./mlflow.db, read here with no MLFLOW_* variable by its client and its server."""
    import subprocess
    import urllib.request

    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    args = ("--members", "shallow,wide_deep", "--epochs", "3", "--rules", "mean")
    code, _, err = cli(capsys, "run", "--run-dir", run_dir, *args, "--track", "mlflow", *data_args(synthetic_dir))
    assert code == 0, err
    ids = RunDir(run_dir).read_doc("tracking.json")["mlflow"]
    db = tmp_path / "mlflow.db"
    assert ids["uri"] == f"sqlite:///{db}" and db.is_file() and not (tmp_path / "mlruns" / "0" / "meta.yaml").exists()
    cmd = [sys.executable, "-c", READ_BACK, ids["uri"], ids["run_id"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "FINISHED" and json.loads(doc["params"]["members"]) == ["shallow", "wide_deep"]
    assert doc["params"]["seed"] == "0" and "committee.cpu" in doc["tags"]
    assert set(doc["members"]) == {"shallow", "wide_deep"}
    for name, metrics in doc["members"].items():
        saved = RunDir(run_dir).history(name)
        assert [step for step, _ in metrics["val_acc"]] == [1, 2, 3]
        assert [value for _, value in metrics["val_acc"]] == pytest.approx([row["val_acc"] for row in saved])
        assert all(len(metrics[key]) == 3 for key in metrics)
    assert {"metrics.json", "report.html", "MODEL_CARD.md", "config.json", "figures"} <= set(doc["artifacts"])
    assert "figures/reliability.png" in doc["figures"]
    with mlflow_server(ids["uri"], tmp_path) as base:
        run = fetch_json(f"{base}/api/2.0/mlflow/runs/get?run_id={ids['run_id']}")["run"]
        assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == "run"
        assert {p["key"]: p["value"] for p in run["data"]["params"]}["seed"] == "0"
        listed = fetch_json(f"{base}/api/2.0/mlflow/artifacts/list?run_id={ids['run_id']}")
        assert "metrics.json" in {f["path"] for f in listed["files"]}
        url = f"{base}/get-artifact?path=metrics.json&run_uuid={ids['run_id']}"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert json.loads(r.read()) == RunDir(run_dir).read_doc("metrics.json")


def fetch_json(url: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


class mlflow_server:
    """``mlflow server`` on a free loopback port against ``uri``, one worker; stopped on exit."""

    def __init__(self, uri: str, cwd):
        self.uri, self.cwd = uri, cwd

    def __enter__(self) -> str:
        import shutil
        import socket
        import subprocess

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exe = shutil.which("mlflow", path=str(__import__("pathlib").Path(sys.executable).parent))
        cmd = [exe, "server", "--backend-store-uri", self.uri, "--host", "127.0.0.1", "--port", str(port), "-w", "1"]
        self.log = open(self.cwd / "mlflow-server.log", "w")  # noqa: SIM115 -- closed in __exit__
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=clean_env(), stdout=self.log, stderr=self.log)
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
        while True:
            try:
                fetch_json(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")
                return base
            except OSError:
                assert self.proc.poll() is None, (self.cwd / "mlflow-server.log").read_text()
                assert time.monotonic() < deadline, "mlflow server did not start in 90 s"
                time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001 -- a server that ignores SIGTERM is killed
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def test_a_resumed_run_continues_the_same_mlflow_runs_without_duplicate_steps(
    synthetic_dir, tmp_path, capsys, monkeypatch
):
    from committee.training import loop

    uri = f"sqlite:///{tmp_path / 'm.db'}"  # resumed against a SQLite store, as by default
    run_dir = tmp_path / "run"
    real = loop.run_epoch

    def interrupted(t, run, progress=None, callbacks=None):
        if t.next_epoch == 3:
            raise KeyboardInterrupt
        return real(t, run, progress, callbacks)

    monkeypatch.setattr(loop, "run_epoch", interrupted)
    args = ("--members", "shallow", "--epochs", "4", "--track", f"mlflow:{uri}", *data_args(synthetic_dir))
    from committee.cli.commands import main

    assert main(["train", "--run-dir", str(run_dir), *args]) == 130  # interrupted after epoch 2
    capsys.readouterr()
    monkeypatch.setattr(loop, "run_epoch", real)
    first = RunDir(run_dir).read_doc("tracking.json")["mlflow"]["run_id"]
    code, _, err = cli(capsys, "train", "--run-dir", run_dir, "--resume", *args)
    assert code == 0, err
    client = mlflow_client(uri)
    assert RunDir(run_dir).read_doc("tracking.json")["mlflow"]["run_id"] == first
    children = child_runs(client, client.get_run(first))
    assert list(children) == ["shallow"]  # the member's run continued, not a second one
    steps = [m.step for m in client.get_metric_history(children["shallow"].info.run_id, "val_acc")]
    assert sorted(steps) == [1, 2, 3, 4]


def test_tensorboard_gets_the_scalars_and_the_figures(synthetic_dir, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    args = ("--members", "shallow", "--epochs", "2", "--rules", "mean", "--track", "tensorboard")
    code, _, err = cli(capsys, "run", "--run-dir", run_dir, *args, *data_args(synthetic_dir))
    assert code == 0, err
    events = EventAccumulator(str(run_dir / "tensorboard" / "shallow"))
    events.Reload()
    val = events.Scalars("val_acc")
    assert [e.step for e in val] == [1, 2]
    assert [e.value for e in val] == pytest.approx([r["val_acc"] for r in RunDir(run_dir).history("shallow")])
    assert {"train_loss", "lr", "images_per_s"} <= set(events.Tags()["scalars"])
    committee = EventAccumulator(str(run_dir / "tensorboard" / "committee"))
    committee.Reload()
    assert {"reliability", "confusion_committee_mean"} <= set(committee.Tags()["images"])


def test_an_unreachable_tracking_server_stops_the_run_before_training(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    start = time.time()
    code, _, err = cli(
        capsys, "train", "--run-dir", run_dir, "--members", "shallow", "--epochs", "1",
        "--track", "mlflow:http://127.0.0.1:9", *data_args(synthetic_dir),
    )  # fmt: skip
    assert code == 1 and "cannot use the MLflow tracking store http://127.0.0.1:9" in err
    assert time.time() - start < 30
    assert not RunDir(run_dir).finished_member_names()


def test_a_missing_extra_names_it(synthetic_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    code, _, err = cli(capsys, "train", "--run-dir", tmp_path / "r", "--members", "shallow", "--track", "mlflow",
                       *data_args(synthetic_dir))  # fmt: skip
    assert code == 1 and "pip install 'committee[mlflow]'" in err
    code, _, err = cli(capsys, "train", "--run-dir", tmp_path / "r", "--track", "wandb")
    assert code == 2 and "mlflow, mlflow:URI or tensorboard" in err


def test_a_tracking_failure_mid_run_warns_once_and_training_goes_on(synthetic_dir, tmp_path, capsys, monkeypatch):
    from committee.study import tracking

    def full_disk(self, t, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracking.MlflowMember, "epoch_end", full_disk)
    uri = (tmp_path / "mlruns").as_uri()
    args = ("--members", "shallow", "--epochs", "3", "--track", f"mlflow:{uri}", *data_args(synthetic_dir))
    code, _, err = cli(capsys, "train", "--run-dir", tmp_path / "run", *args)
    assert code == 0
    assert err.count("No space left on device") == 1 and "training goes on" in err
    assert len(RunDir(tmp_path / "run").history("shallow")) == 3


def test_guarded_turns_a_failing_tracker_off():
    calls = []

    class Broken(TrainingCallback):
        def epoch_end(self, t, row):
            calls.append(row)
            raise RuntimeError("server gone")

    guarded = Guarded(Broken(), "mlflow http://x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        guarded.epoch_end(None, {"epoch": 1})
        guarded.epoch_end(None, {"epoch": 2})
    assert len(calls) == 1 and len(caught) == 1 and "server gone" in str(caught[0].message)
