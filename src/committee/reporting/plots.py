"""Figures from precomputed arrays (ConfusionMatrixDisplay style): data in, Axes/Figure out.

No function here reads files or runs a model; the report computes the arrays and
decides where figures go. Matplotlib uses the Agg backend (no display needed).
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

matplotlib.use("Agg")


# One palette everywhere: members in fixed colours, committees in darker tones.
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]


STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "savefig.bbox": "tight",
    # Class names are user text: "$\\frac$" must print as it is, not be parsed (and fail) as math.
    "text.parse_math": False,
}


plt.rcParams.update(STYLE)


def show_image(ax: Axes, image: np.ndarray) -> None:
    """One uint8 image: ``(S, S)`` grayscale (dark on light, as printed) or ``(3, S, S)`` RGB as it is."""
    if image.ndim == 3:
        ax.imshow(image.transpose(1, 2, 0))
    else:
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)


def sample_grid(images_by_class: list[np.ndarray], class_names: list[str]) -> Figure:
    """A row per class of sample images. ``images_by_class[k]`` is uint8 ``(n_k, 28, 28)``."""
    per_row = max((len(x) for x in images_by_class), default=1)
    fig, axes = plt.subplots(
        len(class_names),
        per_row,
        figsize=(per_row * 0.75 + 1.4, len(class_names) * 0.78),
        squeeze=False,
        gridspec_kw={"wspace": 0.05, "hspace": 0.08},
    )
    for k, (row, name) in enumerate(zip(axes, class_names)):
        for j, ax in enumerate(row):
            ax.set_xticks([]), ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(images_by_class[k]):
                show_image(ax, images_by_class[k][j])
        row[0].set_ylabel(f"{k} {name}", rotation=0, ha="right", va="center", fontsize=8)
    return fig


def class_counts(ax: Axes, counts: dict[str, list[int]], class_names: list[str]) -> Axes:
    """Grouped bars: images per class in each split. ``counts[split]`` has one count per class."""
    x = np.arange(len(class_names))
    width = 0.8 / max(len(counts), 1)
    for i, (split, c) in enumerate(counts.items()):
        ax.bar(x + (i - (len(counts) - 1) / 2) * width, c, width, label=split, color=PALETTE[i])
    ax.set_xticks(x, class_names, rotation=35, ha="right")
    ax.set_ylabel("images")
    ax.set_title("Images per class and split")
    ax.set_ylim(0, max((max(c) for c in counts.values()), default=1) * 1.22)  # room for the legend
    ax.legend(frameon=False, ncols=len(counts), loc="upper center")
    return ax


def split_sizes(ax: Axes, sizes: dict[str, int]) -> Axes:
    """A horizontal stacked bar of split sizes with counts and percentages."""
    total = sum(sizes.values()) or 1
    left = 0
    for i, (name, n) in enumerate(sizes.items()):
        label = f"{name} {n:,} ({100 * n / total:.1f} %)"
        ax.barh([0], [n], left=left, color=PALETTE[i], height=0.6, label=label)
        if n / total > 0.2:  # narrow segments are named by the legend only
            ax.text(left + n / 2, 0, label, ha="center", va="center", color="white", fontsize=9, fontweight="bold")
        left += n
    ax.legend(frameon=False, ncols=len(sizes), loc="upper center", bbox_to_anchor=(0.5, -0.55), fontsize=8)
    ax.set_xlim(0, total)
    ax.set_yticks([])
    ax.set_xlabel("images")
    ax.set_title("Split sizes")
    return ax


def training_curves(
    ax_acc: Axes,
    ax_loss: Axes,
    epochs: np.ndarray,
    train_acc: np.ndarray,
    val_acc: np.ndarray,
    train_loss: np.ndarray,
    val_loss: np.ndarray,
    best_epoch: int,
    title: str = "",
    train_label: str = "train",
    val_label: str = "validation",
) -> tuple[Axes, Axes]:
    """Accuracy and loss per epoch, train vs validation, the kept (best) epoch marked.

    The labels say what each line is (e.g. a training loss that includes label smoothing)."""
    for ax, tr, va, what in ((ax_acc, train_acc, val_acc, "accuracy"), (ax_loss, train_loss, val_loss, "loss")):
        ax.plot(epochs, tr, "o-", ms=3, color=PALETTE[0], label=train_label)
        ax.plot(epochs, va, "o-", ms=3, color=PALETTE[1], label=val_label)
        ax.axvline(best_epoch, color="#888", ls="--", lw=1, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.set_title(f"{title} {what}".strip())
        if len(epochs) < 15:
            ax.set_xticks(epochs)
    # One legend for both panels, below them (long labels would cover the curves): leave it room
    # with fig.tight_layout(rect=(0, 0.12, 1, 1)).
    handles, labels = ax_loss.get_legend_handles_labels()
    ax_loss.figure.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, fontsize=8)
    return ax_acc, ax_loss


def confusion(ax: Axes, cm: np.ndarray, class_names: list[str], normalize: bool = False, title: str = "") -> Axes:
    """Confusion matrix (rows: true class, columns: predicted), counts or row-normalised."""
    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(shown.max(), 1))
    n = len(class_names)
    threshold = (1 if normalize else shown.max()) / 2
    for i in range(n):
        for j in range(n):
            v = shown[i, j]
            text = (f"{v:.2f}" if v >= 0.005 else "") if normalize else (f"{int(v)}" if v else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="white" if v > threshold else "black")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=7.5)
    ax.set_yticks(range(n), class_names, fontsize=7.5)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("row-normalised" if normalize else "counts"))
    return ax


def accuracy_bars(ax: Axes, names: list[str], accuracy: np.ndarray, ci: np.ndarray, committee: list[bool]) -> Axes:
    """Accuracy (in %) with its 95 % interval per model; ``ci`` is ``(K, 2)``."""
    acc, ci = 100 * np.asarray(accuracy), 100 * np.asarray(ci)
    y = np.arange(len(names))[::-1]
    colors = ["#2F4B7C" if c else PALETTE[0] for c in committee]
    ax.barh(y, acc, color=colors, height=0.6)
    ax.errorbar(acc, y, xerr=[acc - ci[:, 0], ci[:, 1] - acc], fmt="none", ecolor="black", capsize=3, lw=1)
    span = ci[:, 1].max() - ci[:, 0].min()
    for yi, a, hi in zip(y, acc, ci[:, 1]):
        ax.text(hi + 0.02 * span + 0.02, yi, f"{a:.2f} %", va="center", fontsize=8)
    ax.set_yticks(y, names)
    lo = max(0.0, ci[:, 0].min() - 2)
    ax.set_xlim(lo, min(100.0, ci[:, 1].max() + (ci[:, 1].max() - lo) * 0.25))
    ax.set_xlabel("test accuracy (%), 95 % interval")
    ax.set_title("Members and committee rules")
    return ax


def mistakes(images: np.ndarray, true: list[str], pred: list[str], confidence: np.ndarray, cols: int = 8) -> Figure:
    """A gallery of misclassified images, each captioned true -> predicted (confidence)."""
    n = max(len(images), 1)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.25, rows * 1.55), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            show_image(ax, images[i])
            ax.set_title(
                f"true {true[i]}\npred {pred[i]}\n{100 * confidence[i]:.0f} %", fontsize=6.5, fontweight="normal"
            )
    fig.subplots_adjust(hspace=0.9)
    return fig


def ablation_chart(ax: Axes, variants: list[str], values: list[np.ndarray], ci: list[list[float]]) -> Axes:
    """Test accuracy (%) of every seed per variant (dots), with the mean and its 95 % t-interval."""
    for i, (v, vals, (lo, hi)) in enumerate(zip(variants, values, ci)):
        vals = 100 * np.asarray(vals)
        ax.scatter(np.full(len(vals), i), vals, color=PALETTE[i % len(PALETTE)], alpha=0.75, zorder=3, s=22)
        ax.hlines(vals.mean(), i - 0.25, i + 0.25, color="black", lw=1.5, zorder=4)
        if lo == lo:
            ax.vlines(i, 100 * lo, 100 * hi, color="black", lw=1, zorder=2)
    ax.set_xticks(range(len(variants)), variants)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Ablation: one dot per seed, bar = mean, line = 95 % interval of the mean")
    return ax


def reliability_diagram(ax: Axes, confidence: np.ndarray, accuracy: np.ndarray, count: np.ndarray, title: str) -> Axes:
    """Accuracy against confidence per bin (bars), the diagonal being perfect calibration."""
    n = len(count)
    centres = (np.arange(n) + 0.5) / n
    has = np.asarray(count) > 0
    ax.bar(centres[has], np.asarray(accuracy)[has], width=1 / n, color=PALETTE[0], edgecolor="white", label="accuracy")
    ax.bar(
        centres[has],
        np.asarray(confidence)[has] - np.asarray(accuracy)[has],
        bottom=np.asarray(accuracy)[has],
        width=1 / n,
        color=PALETTE[3],
        alpha=0.35,
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "--", color="#555", lw=1)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    return ax


def matrix(
    ax: Axes, values: np.ndarray, names: list[str], title: str, fmt: str = "{:.2f}", cmap: str = "Blues"
) -> Axes:
    """A labelled square heat map (pairwise member statistics)."""
    values = np.asarray(values, dtype=float)
    ax.imshow(values, cmap=cmap, vmin=min(0.0, values.min()), vmax=max(values.max(), 1e-9))
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                fmt.format(values[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if values[i, j] > values.max() * 0.6 else "black",
            )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_title(title)
    return ax


def growth(ax: Axes, order: list[str], accuracy: np.ndarray) -> Axes:
    """Committee (mean) test accuracy as members are added, best first."""
    k = np.arange(1, len(order) + 1)
    ax.plot(k, 100 * np.asarray(accuracy), "o-", color=PALETTE[0])
    ax.set_xticks(k, [f"+{n}" if i else n for i, n in enumerate(order)], rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy as members are added")
    return ax


def accuracy_vs_cost(
    ax: Axes,
    cost: np.ndarray,
    accuracy: np.ndarray,
    ci: np.ndarray,
    labels: list[str],
    groups: list[str],
    xlabel: str,
    target: float | None = None,
    frontier: bool = True,
    connect: bool = False,
) -> Axes:
    """Accuracy (%) against a cost (seconds, ms per 1,000 images, ...), one point per system.

    ``ci`` is ``(n, 2)`` in percent; an empty label leaves a point unnamed; ``groups`` colours
    points (e.g. "member", "committee",
    or a preset name). ``frontier`` draws the Pareto front (no other point is both cheaper
    and more accurate); ``connect`` joins each group's points in cost order (a curve).
    """
    cost, accuracy, ci = np.asarray(cost, float), np.asarray(accuracy, float), np.asarray(ci, float).reshape(-1, 2)
    for i, group in enumerate(dict.fromkeys(groups)):
        sel = np.array([g == group for g in groups])
        order = np.argsort(cost[sel])
        c, a, lo_hi = cost[sel][order], accuracy[sel][order], ci[sel][order]
        ax.errorbar(
            c,
            a,
            yerr=np.abs(lo_hi.T - a),
            fmt="o-" if connect else "o",
            ms=5,
            capsize=3,
            lw=1,
            color=PALETTE[i % len(PALETTE)],
            label=group,
        )
    for x, y, text in zip(cost, accuracy, labels):
        if text:
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, -10), fontsize=7, color="#444")
    if frontier and len(cost):
        order = np.lexsort((-accuracy, cost))
        front, best = [], -np.inf
        for i in order:
            if accuracy[i] > best:
                front.append(i)
                best = accuracy[i]
        ax.step(
            cost[front], accuracy[front], where="post", color="#999", lw=0.8, ls="--", label="Pareto front", zorder=0
        )
    if target is not None:
        ax.axhline(target, color="#C44E52", lw=0.8, ls=":", label=f"target {target:g} %")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return ax


def severity_curves(ax: Axes, clean: dict[str, float], by_severity: dict[str, list[float]], title: str) -> Axes:
    """Accuracy against corruption severity (0 = clean), one line per entry; committees solid, members dashed."""
    for i, (name, values) in enumerate(by_severity.items()):
        committee = name.startswith("committee:")
        ax.plot(
            range(len(values) + 1),
            100 * np.r_[clean[name], values],
            "o-" if committee else "--",
            color=PALETTE[i % len(PALETTE)],
            lw=2.2 if committee else 1.2,
            ms=3,
            label=name,
        )
    ax.set_xticks(range(len(values) + 1))
    ax.set_xlabel("severity (0 = clean)")
    ax.set_title(title)
    return ax


def risk_coverage(ax: Axes, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Axes:
    """Risk (error rate of the answered) against coverage (share answered), most confident first."""
    for i, (name, (coverage, risk)) in enumerate(curves.items()):
        committee = name.startswith("committee:")
        ax.plot(
            100 * np.asarray(coverage),
            100 * np.asarray(risk),
            "-" if committee else "--",
            color=PALETTE[i % len(PALETTE)],
            lw=2.2 if committee else 1.2,
            label=name,
        )
    ax.set_xlabel("coverage (%)")
    ax.set_ylabel("risk: error rate of the answered (%)")
    ax.set_title("Selective prediction")
    ax.legend(fontsize=7)
    return ax


def price_map(
    ax: Axes,
    cost: np.ndarray,
    accuracy: np.ndarray,
    kinds: list[str],
    frontier: np.ndarray,
    labels: list[str],
    xlabel: str,
) -> Axes:
    """Accuracy (%) against one cost (log scale) for every way to spend it: ``kinds`` colour the points (member,
    subset, companion), the points where ``frontier`` is true are joined in cost order, an empty label leaves a
    point unnamed."""
    cost, accuracy, frontier = np.asarray(cost, float), np.asarray(accuracy, float), np.asarray(frontier, bool)
    for i, kind in enumerate(("subset", "member", "companion")):
        sel = np.array([k == kind for k in kinds], bool)
        if sel.any():
            ax.scatter(
                cost[sel], accuracy[sel], s=14 if kind == "subset" else 30, color=PALETTE[i], label=kind, zorder=2
            )
    front = np.flatnonzero(frontier)
    front = front[np.argsort(cost[front])]
    ax.plot(cost[front], accuracy[front], "--", color="#777", lw=0.9, label="frontier (on validation)", zorder=1)
    for x, y, text in zip(cost, accuracy, labels):
        if text:
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, -9), fontsize=7, color="#444")
    log_axis(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return ax


def cascade_curve(ax: Axes, cost: np.ndarray, accuracy: np.ndarray, chosen: tuple[float, float]) -> Axes:
    """A cascade's test accuracy (%) against its expected inference cost over its thresholds, drawn over a
    :func:`price_map` panel; ``chosen`` marks the (cost, accuracy) of the threshold fitted on validation."""
    order = np.argsort(cost)
    ax.plot(np.asarray(cost)[order], np.asarray(accuracy)[order], "-", color=PALETTE[3], lw=1.4, label="cascade")
    ax.scatter([chosen[0]], [chosen[1]], marker="*", s=90, color=PALETTE[3], zorder=3, label="cascade (fitted)")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return ax


def log_axis(axis) -> None:
    """A log-scale axis with plain tick labels (``text.parse_math`` is off, so matplotlib's default
    ``$10^{2}$`` labels would print as source)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.axes.set_xscale("log") if axis is axis.axes.xaxis else axis.axes.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_formatter(plain)
    lo, hi = axis.get_view_interval()
    # Less than a decade shown: no major tick may fall inside, so the minor ticks carry the labels.
    axis.set_minor_formatter(plain if lo > 0 and hi / lo < 10 else NullFormatter())
