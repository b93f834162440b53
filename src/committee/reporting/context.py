"""What the report's sections read, gathered once (:class:`ReportContext`), and small formatters."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from committee.config.run_config import RunConfig
from committee.models.layer_table import summary
from committee.models.registry import build_model, input_shape_of
from committee.reporting.render import Figure
from committee.store.records import RunResult
from committee.store.run_dir import RunDir


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or x != x else f"{100 * x:.{digits}f} %"


def pct_ci(scores) -> str:
    lo, hi = scores.accuracy_ci
    return f"{100 * scores.accuracy:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]"


def secs(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.1f} s" if x < 120 else f"{x / 60:.1f} min"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def top_confusions(cm: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as (true, predicted, count), count > 0."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None)[:k]
    return [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(flat, off.shape)) if off[i, j] > 0]


@dataclass
class ReportContext:
    """What the sections read: results, run files and images, gathered once."""

    run: RunDir
    result: RunResult
    config: RunConfig
    environment: dict
    data_info: dict | None
    ablation: dict | None
    members: dict[str, dict]  # member.json per member (layers, recipe, ...)
    histories: dict[str, list[dict]]
    labels_test: np.ndarray | None
    images: np.ndarray | None = None  # pooled uint8 (N, 28, 28)
    pool_labels: np.ndarray | None = None  # (N,)
    split_idx: dict[str, np.ndarray] | None = None
    left_out: list[str] = field(default_factory=list)
    shift: dict | None = None  # shift.json (committee shift), if made

    @classmethod
    def build(cls, run: RunDir, result: RunResult, images) -> ReportContext:
        """``images``: (pooled images, pooled labels, split indices), or why they are not available."""

        members = {n: run.member_info(n) for n in result.members}
        for info in members.values():
            if "layers" not in info and info.get("arch"):  # runs trained before member.json kept its layer table
                kwargs = info.get("model_kwargs") or {}
                info["layers"] = summary(build_model(info["arch"], **kwargs), (1, *input_shape_of(kwargs)))
        ctx = cls(
            run,
            result,
            run.config(),
            run.environment(),
            run.data_info(),
            run.read_doc("ablation.json"),
            members,
            {n: run.history(n) for n in result.members},
            run.labels("test"),
        )
        ctx.shift = run.read_doc("shift.json")
        if isinstance(images, str):
            ctx.left_out.append(f"sample images and the mistakes gallery (images not available: {images})")
        else:
            ctx.images, ctx.pool_labels, ctx.split_idx = images
        return ctx

    @property
    def classes(self) -> list[str]:
        return self.result.classes

    @property
    def main_rule(self) -> str | None:
        return self.result.main_rule

    def save(self, fig, name: str, caption: str) -> Figure:
        self.run.save_figure(fig, name)
        return Figure(name, caption)


def pyplot():
    import matplotlib.pyplot as plt

    return plt
