"""Checking a whole run directory, file by file (``committee verify``), and recording it anew (``--rehash``)."""

from __future__ import annotations

from pathlib import Path

from committee.base.errors import CommitteeError
from committee.base.fileio import regular_file, run_file, sha256_file
from committee.base.names import inside
from committee.store.run_dir import RunDir


def recorded_files(run: RunDir) -> list[Path]:
    """Every file the manifest must cover that exists now: inputs, labels, finished members, metrics."""
    names = ["config.json", "data.json", "labels_val.npy", "labels_test.npy", "metrics.json"]
    names += [f"splits/{s}.npy" for s in ("train", "val", "test")]
    names += [f"members/{m}/{f}" for m in run.finished_member_names() for f in run.RECORDED_MEMBER_FILES]
    return [run.path / n for n in names if (run.path / n).exists()]


def verify_run(run: RunDir) -> list[tuple[str, str]]:
    """(relative path, what is wrong) for every problem; empty when all is well."""
    try:
        manifest = run.manifest.files()
    except CommitteeError as exc:
        return [("manifest.json", str(exc).split(": ", 1)[-1])]
    problems: list[tuple[str, str]] = []
    for rel, expected in manifest.items():
        path = run.path / rel
        try:
            inside(run.path, path)
            if sha256_file(regular_file(run_file(path, run.path))) != expected:
                problems.append((rel, "contents differ from the checksum in manifest.json"))
        except CommitteeError as exc:
            problems.append((rel, str(exc).split(": ", 1)[-1]))
    try:
        files = recorded_files(run)
    except CommitteeError as exc:
        return [*problems, ("members", str(exc))]
    problems += [
        (run.manifest.relative(p), "not recorded in manifest.json")
        for p in files
        if run.manifest.relative(p) not in manifest
    ]
    return problems + content_problems(run, {rel for rel, _ in problems})


def content_problems(run: RunDir, already: set[str]) -> list[tuple[str, str]]:
    """Files whose bytes match but whose content makes no sense (each reader's own checks)."""
    readers = [("config.json", run.config), ("data.json", run.data_info), ("metrics.json", run.read_metrics)]
    readers += [(f"members/{n}/member.json", lambda n=n: run.member(n)) for n in run.finished_member_names()]
    # Not recorded (they decide no prediction), but read by report and serve: the same refusals here.
    readers += [("MODEL_CARD.md", run.model_card), ("figures", run.figure_paths)]
    readers += [(f"members/{n}/history.csv", lambda n=n: run.history(n)) for n in run.finished_member_names()]
    problems = []
    for rel, read in readers:
        if rel in already:
            continue
        try:
            read()
        except CommitteeError as exc:
            problems.append((rel, str(exc).removeprefix(f"{run.path / rel}: ")))
    return problems


def rehash_run(run: RunDir) -> int:
    """Re-create manifest.json from the files as they are now (a deliberate act); returns how many it records."""
    files = recorded_files(run)
    run.manifest.write({run.manifest.relative(p): sha256_file(p) for p in files})
    return len(files)
