"""Every file that decides a prediction is in the manifest and checked when read; verify and --rehash."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from committee.store.integrity import rehash_run
from committee.store.run_dir import RunDir
from conftest import cli


def predict(capsys, run: Path):
    code, out, err = cli(capsys, "predict", "--run-dir", run, run.parent / "x.npy", "--json")
    return code, json.loads(out), err


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_untouched_run_verifies_and_predicts(run_copy, capsys):
    code, out, _ = cli(capsys, "verify", "--run-dir", run_copy, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["problems"] == []
    recorded = set(json.loads((run_copy / "manifest.json").read_text())["files"])
    # Everything that decides a prediction is covered.
    for rel in (
        "config.json",
        "data.json",
        "labels_val.npy",
        "metrics.json",
        "members/shallow/member.json",
        "members/shallow/weights.safetensors",
        "members/wide_deep/probs_val.npy",
        "splits/test.npy",
    ):
        assert rel in recorded
    code, doc, _ = predict(capsys, run_copy)
    assert code == 0 and len(doc["predictions"]) == 4


def fitted_params(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())["committees"]


@pytest.mark.parametrize(
    "rel, change",
    [
        ("metrics.json", "temperature"),  # fault 3: a calibration temperature edited to -1
        ("members/shallow/member.json", "precision"),
        ("config.json", "lr"),
        ("data.json", "classes"),
    ],
)
def test_tampered_json_is_refused_with_its_name(run_copy, capsys, rel, change):
    path = run_copy / rel
    if change == "temperature":
        text = path.read_text()
        assert '"temperature"' in text
        doc = json.loads(text)
        for c in doc["committees"].values():
            if "temperature" in (c.get("rule_params") or {}):
                c["rule_params"]["temperature"] = -1.0
        path.write_text(json.dumps(doc))
    elif change == "precision":
        edit_json(path, lambda d: d.update(precision="fp8"))
    elif change == "lr":
        edit_json(path, lambda d: d.update(lr=10.0))
    else:
        edit_json(path, lambda d: d.update(classes=list("abcdefghij")[::-1]))
    code, out, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
    assert code == 1 and rel in err.replace(str(run_copy) + "/", "") and "checksum" in err
    code, out, _ = cli(capsys, "verify", "--run-dir", run_copy, "--json")
    assert code == 1 and [p["file"] for p in json.loads(out)["problems"]] == [rel]


def test_deleted_manifest_refuses_the_run_until_rehash(run_copy, capsys):
    """Fault 4: deleting manifest.json used to turn every check off."""
    (run_copy / "manifest.json").unlink()
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
    assert code == 1 and "manifest.json: missing" in err and "verify --run-dir" in err and "--rehash" in err
    code, out, _ = cli(capsys, "verify", "--run-dir", run_copy)
    assert code == 1 and "manifest.json" in out
    code, out, _ = cli(capsys, "verify", "--run-dir", run_copy, "--rehash")
    assert code == 0 and "every recorded file checks out" in out
    code, doc, _ = predict(capsys, run_copy)
    assert code == 0 and len(doc["predictions"]) == 4


def test_rehash_records_files_but_still_reports_nonsense(run_copy, capsys):
    """A deliberate edit is recorded by --rehash; an edit that makes no sense is still named, file by file."""
    edit_json(run_copy / "members" / "shallow" / "member.json", lambda d: d.update(precision="fp8"))
    code, out, _ = cli(capsys, "verify", "--run-dir", run_copy, "--rehash", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["rehashed"] > 10
    assert doc["problems"] == [
        {"file": "members/shallow/member.json", "problem": "'precision' must be one of fp32, bf16, got 'fp8'"}
    ]
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
    assert code == 1 and "'precision' must be one of fp32, bf16" in err


@pytest.mark.parametrize(
    "doc, message",
    [
        ("{not json", "unreadable manifest"),
        ('{"files": {"config.json": "abc"}}', "malformed"),
        ('{"files": ["config.json"]}', "malformed"),
        ("[]", "malformed"),
    ],
)
def test_nonsense_manifest_is_one_line(run_copy, capsys, doc, message):
    (run_copy / "manifest.json").write_text(doc)
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
    assert code == 1 and message in err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epochs": "ten"}, "epochs must be"),
        ({"seed": 2**70}, "--seed must be"),
        ({"members": "shallow"}, "members must be"),
        ({"lr": float("nan")}, "lr must be"),
        ({"member_options": {"shallow": {"lr": "x"}}}, "lr must be"),
        ({"precision": "fp8"}, "--precision must be"),
    ],
)
def test_nonsense_config_values_after_rehash(run_copy, capsys, change, message):
    """Fault 7: nonsense values in config.json, recorded on purpose, end in one line naming the file."""
    path = run_copy / "config.json"
    doc = json.loads(path.read_text())
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            for member, opts in value.items():
                doc[key][member].update(opts)
        else:
            doc[key] = value
    path.write_text(json.dumps(doc, allow_nan=True))
    rehash_run(RunDir(run_copy))
    code, _, err = cli(capsys, "train", "--run-dir", run_copy, "--resume", "--quiet")
    assert code == 1 and "config.json" in err and message in err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"classes": 5}, "'classes' must be a list"),
        ({"classes": ["a"]}, "'classes' must hold 2 to"),
        ({"classes": ["a", "b", "a"]}, "names a class twice"),
        ({"input_shape": [1, 28]}, "'input_shape' must be"),
    ],
)
def test_nonsense_data_json(run_copy, capsys, change, message):
    edit_json(run_copy / "data.json", lambda d: d.update(change))
    rehash_run(RunDir(run_copy))
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
    assert code == 1 and "data.json" in err and message in err


def test_unknown_model_kwargs_in_member_json(run_copy, capsys):
    edit_json(run_copy / "members" / "shallow" / "member.json", lambda d: d.update(model_kwargs={"bogus": 3}))
    rehash_run(RunDir(run_copy))
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy")
    assert code == 1 and "member shallow: cannot rebuild its model" in err


def test_modified_weights_refused_and_verify_names_them(run_copy, capsys):
    path = run_copy / "members" / "wide_deep" / "weights.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    code, _, err = cli(capsys, "export", "--run-dir", run_copy, "--out", run_copy.parent / "c.onnx")
    assert code == 1 and "weights.safetensors" in err
    assert not (run_copy.parent / "c.onnx").exists()
    code, out, _ = cli(capsys, "verify", "--run-dir", run_copy)
    assert code == 1 and "members/wide_deep/weights.safetensors: contents differ" in out


def test_nan_never_reaches_json():
    from committee.base.fileio import dumps

    text = dumps({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32("nan")})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None}
