"""MODEL_CARD.md: its sections and numbers come from the run's files, shift.json included once made."""

from committee.reporting.context import ReportContext
from committee.reporting.model_card import render_model_card, reproduce_command
from committee.serving.trained import run_results
from committee.store.run_dir import RunDir


def test_card_reports_shift_and_ood_once_measured(run_copy):
    run = RunDir(run_copy)
    shift = {
        "n_test": 60,
        "corruptions": ["gaussian_noise", "blur"],
        "severities": [1, 2],
        "entries": {
            "shallow": {"clean": {"accuracy": 0.8}, "mca": 0.61, "drop": 0.19},
            "committee:calibrated": {"clean": {"accuracy": 0.85}, "mca": 0.7, "drop": 0.15},
        },
        "ood": {"mnist_digits": {"n": 500, "msp": {"auroc": 0.912}, "energy": None}},
    }
    run.write_doc("shift.json", shift)
    ctx = ReportContext.build(run, run_results(run), "not needed")
    card = render_model_card(ctx)
    assert "| committee:calibrated | 85.00 % | 70.00 % | 15.00 % |" in card
    assert "- mnist_digits (500 images): msp 0.912" in card
    assert "2 corruptions × 2 severities on 60 test images" in card
    assert "Not measured for this run" not in card
    # the reproduction line names what the run was made with
    cmd = reproduce_command(ctx)
    assert cmd.startswith("committee run --preset ") and "--members shallow,wide_deep" in cmd
    assert cmd.endswith(f"--run-dir {run_copy}")
    for section in ("Model details", "Intended use", "Data", "Metrics", "Limitations", "How to reproduce"):
        assert f"\n## {section}\n" in card
