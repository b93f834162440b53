"""A run directory's files are its own regular files (issue 41, hostile input 1-5, 7, 11, 13): each case
below is a copy of a finished run an attacker (or an accident) changed; each command refuses it in one
line, reads or writes nothing outside the run, and never quotes another file's contents."""

import os
import threading

import pytest

from committee.base.errors import CommitteeError
from committee.serving.http_app import create_app
from committee.serving.trained import Committee
from conftest import cli

SECRET = "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "passwd"
    path.write_text(SECRET)
    return path


def test_report_never_writes_through_a_linked_figures_folder(run_copy, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.png").write_bytes(b"my own picture")
    (run_copy / "figures").rename(tmp_path / "old-figures")
    (run_copy / "figures").symlink_to(elsewhere, target_is_directory=True)
    code, _, err = cli(capsys, "report", "--run-dir", run_copy)
    assert code != 0 and "figures: a symbolic link" in err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["mine.png"]  # nothing written there
    code, out, err = cli(capsys, "verify", "--run-dir", run_copy)
    assert code != 0 and "figures" in out + err


def test_serve_never_publishes_a_linked_model_card(run_copy, secret, capsys):
    (run_copy / "MODEL_CARD.md").unlink()
    (run_copy / "MODEL_CARD.md").symlink_to(secret)
    with pytest.raises(CommitteeError, match="MODEL_CARD.md: a symbolic link"):
        create_app(Committee.load(run_copy))
    code, out, err = cli(capsys, "verify", "--run-dir", run_copy)
    assert code != 0 and "MODEL_CARD.md" in out + err and "daemon" not in out + err


def test_a_linked_history_is_refused_without_quoting_it(run_copy, secret, capsys):
    history = run_copy / "members" / "shallow" / "history.csv"
    history.unlink()
    history.symlink_to(secret)
    for command in ("verify", "evaluate", "report"):
        code, out, err = cli(capsys, command, "--run-dir", run_copy)
        assert code != 0, command
        assert "history.csv: a symbolic link" in out + err and "daemon" not in out + err, command


def test_a_history_of_words_is_refused_without_quoting_it(run_copy, capsys):
    history = run_copy / "members" / "shallow" / "history.csv"
    history.write_text("epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n" + "daemon:x," * 6 + "1\n")
    code, out, err = cli(capsys, "evaluate", "--run-dir", run_copy)
    assert code != 0 and "line 2: not a number" in err and "daemon" not in out + err


def test_a_fifo_model_card_never_blocks(run_copy, capsys):
    (run_copy / "MODEL_CARD.md").unlink()
    os.mkfifo(run_copy / "MODEL_CARD.md")
    done = {}

    def verify():
        done["result"] = cli(capsys, "verify", "--run-dir", run_copy)

    thread = threading.Thread(target=verify, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "verify blocked on a FIFO"
    code, out, err = done["result"]
    assert code != 0 and "MODEL_CARD.md: a FIFO" in out + err
    with pytest.raises(CommitteeError, match="a FIFO, device or socket"):
        create_app(Committee.load(run_copy))


def test_a_model_card_that_is_not_utf8_is_one_line(run_copy):
    (run_copy / "MODEL_CARD.md").write_bytes(b"\xff\xfe not text \x80")
    with pytest.raises(CommitteeError, match="not UTF-8 text"):
        create_app(Committee.load(run_copy))


@pytest.mark.parametrize("rel", ["members/shallow/weights.safetensors", "metrics.json"])
def test_predict_never_follows_a_linked_run_file(run_copy, tmp_path, capsys, rel):
    # Even a link to an identical copy (another run's file with the same bytes) is refused.
    copy = tmp_path / "copy"
    copy.write_bytes((run_copy / rel).read_bytes())
    (run_copy / rel).unlink()
    (run_copy / rel).symlink_to(copy)
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, tmp_path / "x.npy")
    assert code != 0 and f"{rel}: a symbolic link" in err


def test_writers_remove_only_their_own_temporary_files(run_copy, capsys):
    mine = [run_copy / ".notes.tmp", run_copy / "extra" / ".keep.tmp"]
    mine[1].parent.mkdir()
    for p in mine:
        p.write_text("the user's own")
    stale = run_copy / ".metrics.json.k3j5x8q1.tmp"  # what a writer killed mid-write leaves
    stale.write_text("half")
    code, _, _ = cli(capsys, "evaluate", "--run-dir", run_copy)
    assert code == 0
    assert all(p.read_text() == "the user's own" for p in mine)
    assert not stale.exists()


def test_an_emptied_manifest_is_refused_like_a_lost_one(run_copy, tmp_path, capsys):
    (run_copy / "manifest.json").write_text('{"format_version": 1, "files": {}}')
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, tmp_path / "x.npy")
    assert code != 0 and "records no files" in err and "--rehash" in err


def _rehashed(run_copy):
    from committee.store.integrity import rehash_run
    from committee.store.run_dir import RunDir

    rehash_run(RunDir(run_copy))  # recorded on purpose: the checksums no longer catch it


@pytest.mark.parametrize("shape", [(61, 10), (60, 9)])
def test_probabilities_of_the_wrong_shape_are_one_line_everywhere(run_copy, tmp_path, capsys, shape):
    """Hostile input 10: probs_test.npy of one row too many or one class too few, accepted by a rehash."""
    import numpy as np

    np.save(run_copy / "members" / "shallow" / "probs_test.npy", np.full(shape, 1 / shape[1], np.float32))
    _rehashed(run_copy)
    for argv in (["verify"], ["evaluate"], ["report"]):
        code, out, err = cli(capsys, *argv, "--run-dir", run_copy)
        assert code != 0 and "probs_test.npy: expected finite probabilities of shape (60, 10)" in out + err, argv


def test_a_data_json_with_too_few_classes_is_one_line_everywhere(run_copy, tmp_path, capsys):
    import json

    doc = json.loads((run_copy / "data.json").read_text())
    doc["classes"] = doc["classes"][:9]
    (run_copy / "data.json").write_text(json.dumps(doc))
    _rehashed(run_copy)
    for argv in (["evaluate", "--run-dir", run_copy], ["predict", "--run-dir", run_copy, tmp_path / "x.npy"]):
        code, _, err = cli(capsys, *argv)
        assert code != 0 and "shape (20, 9)" in err, argv


def test_a_metrics_file_of_the_wrong_outline_is_one_clear_line(run_copy, tmp_path, capsys):
    """Hostile input 18: `committees: []` gave "'list' object has no attribute 'items'"."""
    import json

    doc = json.loads((run_copy / "metrics.json").read_text())
    doc["committees"] = []
    (run_copy / "metrics.json").write_text(json.dumps(doc))
    _rehashed(run_copy)
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, tmp_path / "x.npy")
    assert code != 0 and "'committees' must be an object of name -> scores, got list" in err
