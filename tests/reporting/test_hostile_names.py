"""Class names are any text: escaped everywhere they are written, never parsed as math or markup."""

from __future__ import annotations

import numpy as np

from conftest import cli, synthetic_arrays

NAMES = ["$\\frac$", "<script>alert(1)</script>", "a|b\nc", "**bold** `x`", "e", "f", "g", "h", "i", "j"]


def test_a_run_with_hostile_class_names_reports_them_escaped(isolated_env, capsys):
    a = synthetic_arrays(n_train=200, n_test=60)
    path = isolated_env / "hostile.npz"
    np.savez(
        path,
        x_train=a["train_images"],
        y_train=a["train_labels"],
        x_test=a["test_images"],
        y_test=a["test_labels"],
        class_names=np.array(NAMES),
    )
    run = isolated_env / "run"
    code, _, err = cli(
        capsys, "run", "--run-dir", run, "--data", path, "--members", "shallow,wide_deep", "--epochs", "1", "--quiet"
    )
    assert code == 0, err
    assert "committee: warning" not in err  # no mathtext or glyph complaints
    md = (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "<script>" not in html and "&lt;script&gt;" in html
    for line in md.splitlines():  # a newline in a class name must not break a table row
        if " | " in line:
            assert line.startswith("|") and line.endswith("|"), line
    assert (run / "figures").is_dir() and any((run / "figures").glob("*.png"))
    assert cli(capsys, "verify", "--run-dir", run)[0] == 0
