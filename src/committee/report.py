"""The report: every figure and table of the seed study, generated from a run directory.

Sections are built once as a small document model (paragraphs, tables, figures)
and rendered twice: ``report.md`` (figures linked from ``figures/``) and
``report.html`` (one self-contained file, figures embedded as data URIs).
Every number comes from ``metrics.json`` (or the run's saved arrays).
"""

from __future__ import annotations

import base64
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from committee import CLASS_NAMES
from committee.ensemble import combine
from committee.errors import CommitteeError
from committee.fileio import atomic_path, read_npy, write_text
from committee.rundir import RunDir

# --- document model -------------------------------------------------------


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    highlight: set[tuple[int, int]] = field(default_factory=set)  # (row, col) cells to emphasise
    caption: str = ""


@dataclass
class Figure:
    name: str  # file name under figures/
    caption: str


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)  # str (paragraph, **bold** allowed) | ("h3", str) | Table | Figure

    def p(self, text: str) -> None:
        self.blocks.append(text)

    def h3(self, text: str) -> None:
        self.blocks.append(("h3", text))


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or x != x else f"{100 * x:.{digits}f} %"


def pct_ci(entry: dict) -> str:
    lo, hi = entry["accuracy_ci"]
    return f"{100 * entry['accuracy']:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]"


def secs(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.1f} s" if x < 120 else f"{x / 60:.1f} min"


# --- the report -----------------------------------------------------------


class ReportBuilder:
    def __init__(self, run: RunDir, doc: dict):
        self.run, self.doc = run, doc
        self.fig_dir = run.path / "figures"
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        self.classes = doc.get("classes", list(CLASS_NAMES))
        self.left_out: list[str] = []
        self.split_key = "test" if doc["has_test"] else "val"
        self.members = doc["members"]
        self.committees = doc["committees"]
        self.main_rule = "mean" if "mean" in self.committees else next(iter(self.committees), None)
        self.models = {**self.members, **{f"committee ({r})": e for r, e in self.committees.items()}}
        self.images, self.split_idx = self._load_images()

    # Scores on test when the run has test labels, else on validation.
    def s(self, entry: dict) -> dict:
        return entry if self.doc["has_test"] else entry["val"]

    def _load_images(self):
        from committee.data import load_dataset

        try:
            cfg = self.run.config()
            ds = load_dataset(cfg.data_dir, verify=cfg.verify, allow_download=False)
            idx = {s: read_npy(self.run.path / "splits" / f"{s}.npy") for s in ("train", "val", "test")}
            self.pool_labels = ds.labels.numpy()  # kept so the data section need not load the files again
            return ds.images.numpy(), idx
        except (CommitteeError, OSError, ValueError) as exc:
            self.left_out.append(f"sample images and the mistakes gallery (images not available: {exc})")
            return None, None

    def save(self, fig, name: str, caption: str) -> Figure:
        import matplotlib.pyplot as plt

        with atomic_path(self.fig_dir / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)
        return Figure(name, caption)

    # 1
    def summary(self) -> Section:
        sec = Section("summary", "Summary")
        d, best = self.doc, self.doc["best_member"]
        where = "official test set" if d["split"] == "official" else f"{d['split']} split's test set"
        n = d["n_test"] if d["has_test"] else d["n_val"]
        total_train = sum(e.get("train_seconds") or 0 for e in self.members.values())
        if not d["has_test"]:
            sec.p("**This run has no test labels: every number below is on the validation split.**")
        if self.main_rule:
            c = self.committees[self.main_rule]
            sec.p(f"The committee of {len(self.members)} ({', '.join(self.members)}, rule **{self.main_rule}**) scores "
                  f"**{pct_ci(self.s(c))}** accuracy on the {n:,} images of the {where if d['has_test'] else 'validation split'} "
                  f"(95 % Wilson interval).")
        sec.p(f"Best member, chosen on validation: **{best}** with {pct_ci(self.s(self.members[best]))}.")
        ablation_path = self.run.path / "ablation.json"
        if ablation_path.exists():
            import json
            abl = json.loads(ablation_path.read_text())
            sec.p(f"This run is an ablation of **{abl['base']}** ({len(abl['seeds'])} seeds per variant): "
                  + "; ".join(e["verdict"] for e in abl["variants"] if "verdict" in e) + ". Details in the Ablation section.")
        if self.main_rule and d["has_test"]:
            v = self.committees[self.main_rule]["vs_best_member"]
            sig = "significant" if v["mcnemar_p"] < 0.05 else "not significant"
            ci = v.get("gain_ci")
            ci_text = f", 95 % paired bootstrap interval [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else ""
            sec.p(f"Committee gain over {best}: **{100 * v['gain']:+.2f} points**{ci_text} (it fixed {v['fixed']} images {best} got wrong "
                  f"and broke {v['broken']}; McNemar p = {v['mcnemar_p']:.3g}, {sig} at the 5 % level).")
        sec.p(f"Total training time: **{secs(total_train)}** on {self._device()}.")
        sec.p(self._meaning())
        return sec

    def _device(self) -> str:
        try:
            import json
            env = json.loads(self.run.config_path.read_text()).get("environment", {})
            return f"{env.get('device', '?')} ({env.get('threads', '?')} threads, torch {env.get('torch', '?')})"
        except (OSError, ValueError):
            return "unknown device"

    def _meaning(self) -> str:
        if not self.main_rule or not self.doc["has_test"]:
            return "With one split only, treat differences smaller than the intervals above as noise."
        c = self.committees[self.main_rule]
        v = c["vs_best_member"]
        lo, hi = c["accuracy_ci"]
        width = 100 * (hi - lo) / 2
        if v["mcnemar_p"] < 0.05 and v["gain"] > 0:
            verdict = "the committee is genuinely better than its best member on these images"
        elif v["mcnemar_p"] < 0.05:
            verdict = "the committee is genuinely worse than its best member on these images"
        else:
            verdict = "the committee and its best member cannot be told apart on these images"
        return (f"In words: {verdict}; any single accuracy here is known to about ±{width:.1f} points, so smaller "
                f"differences between rows are noise unless a paired test says otherwise.")

    # 2
    def data(self) -> Section:
        import matplotlib.pyplot as plt

        from committee import plots

        sec = Section("data", "Data")
        try:
            import json
            info = json.loads((self.run.path / "data.json").read_text())
        except (OSError, ValueError):
            sec.p("data.json is missing from this run; the data section is left out.")
            self.left_out.append("the data section (no data.json)")
            return sec
        sec.p(f"{info['dataset']} from `{info['source']}` ({'verified by SHA-256' if info['verified'] else 'not verified'}), "
              f"{'×'.join(map(str, info['image_shape']))} grayscale images, {len(info['classes'])} classes, split **{info['split']}**.")
        if self.images is not None:
            labels = self.pool_labels
            train = self.split_idx["train"]
            by_class = [self.images[train[labels[train] == k][:8]] for k in range(len(self.classes))]
            sec.blocks.append(self.save(plots.sample_grid(by_class, self.classes), "samples.png",
                                        "Eight training images of each class."))
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        plots.class_counts(ax, {k: v["per_class"] for k, v in info["splits"].items()}, self.classes)
        sec.blocks.append(self.save(fig, "class_counts.png", "Dataset overview: images per class in each split (stratified)."))
        fig, ax = plt.subplots(figsize=(7.5, 1.3))
        plots.split_sizes(ax, {k: v["size"] for k, v in info["splits"].items()})
        sec.blocks.append(self.save(fig, "splits.png", "Split sizes and proportions."))
        splits = list(info["splits"])
        rows = [[f"{k} {c}"] + [f"{info['splits'][s]['per_class'][k]:,}" for s in splits] for k, c in enumerate(self.classes)]
        rows.append(["total"] + [f"{info['splits'][s]['size']:,}" for s in splits])
        sec.blocks.append(Table(["class"] + splits, rows, caption="Images per class and split."))
        return sec

    # 3
    def architectures(self) -> Section:
        from committee.models import build_model, count_params, get_spec, summary

        sec = Section("architectures", "Architectures")
        sec.p("Layer tables in Keras style; output shapes are (batch, channels, height, width) as PyTorch lays them out.")
        seen = set()
        for member, e in self.members.items():
            arch, kwargs = e.get("arch") or member, e.get("model_kwargs") or {}
            key = (arch, tuple(sorted(kwargs.items())))
            if key in seen:
                continue
            seen.add(key)
            try:
                model = build_model(arch, **kwargs)
            except (CommitteeError, TypeError):
                continue
            name = arch + "".join(f", {k}={v}" for k, v in sorted(kwargs.items()))
            if e.get("augment"):
                name += ", trained with augmentation"
            rows = [[r["layer"] + f" ({r['type']})", "(" + ", ".join("None" if x is None else str(x) for x in r["output_shape"]) + ")",
                     f"{r['params']:,}"] for r in summary(model)]
            buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
            rows.append(["**total trainable**", "", f"**{count_params(model):,}**"])
            if buffers:
                rows.append(["BN running statistics (not trained)", "", f"{buffers:,}"])
            sec.h3(f"{name}: {get_spec(arch).description}")
            sec.blocks.append(Table(["layer", "output shape", "params"], rows))
        return sec

    # 4
    def training(self) -> Section:
        import matplotlib.pyplot as plt

        from committee import plots

        sec = Section("training", "Training")
        rows = []
        for name, e in self.members.items():
            rows.append([name, str(e.get("epochs_run", "–")), str(e.get("best_epoch", "–")), str(e.get("batch_size", "–")),
                         secs(e.get("train_seconds")), f"{e['train_images_per_s']:,.0f}" if e.get("train_images_per_s") else "–"])
        sec.blocks.append(Table(["member", "epochs run", "best epoch", "batch", "training time", "images/s"], rows,
                                caption="The kept weights are those of the best epoch by validation accuracy."))
        for name in self.members:
            hist = self.run.load_member(name).history
            if not hist:
                continue
            get = lambda k: np.array([h[k] for h in hist])  # noqa: E731
            fig, (a, b) = plt.subplots(1, 2, figsize=(8.5, 2.8))
            plots.training_curves(a, b, get("epoch"), get("train_acc"), get("val_acc"), get("train_loss"), get("val_loss"),
                                  self.members[name].get("best_epoch") or int(get("epoch")[np.argmax(get("val_acc"))]), name)
            fig.tight_layout()
            sec.blocks.append(self.save(fig, f"curves_{name}.png", f"{name}: accuracy and loss per epoch, train vs validation."))
        return sec

    # 5
    def results(self) -> Section:
        import matplotlib.pyplot as plt

        from committee import plots

        sec = Section("results", "Results")
        split = "test" if self.doc["has_test"] else "validation"
        rows, names, acc, ci, is_c = [], [], [], [], []
        for name, e in self.models.items():
            s = self.s(e)
            params = e.get("params") or e.get("parameters_total") or 0
            ms = e.get("infer_seconds_per_1000")
            rows.append([name, pct_ci(s), f"{s['macro_f1']:.4f}", f"{s['nll']:.4f}", f"{params:,}",
                         secs(e.get("train_seconds")), f"{1000 * ms:.0f} ms" if ms else "–"])
            names.append(name), acc.append(s["accuracy"]), ci.append(s["accuracy_ci"]), is_c.append(name.startswith("committee"))
        best_row = int(np.argmax(acc))
        sec.blocks.append(Table([f"model", f"{split} accuracy [95 % CI]", "macro-F1", "NLL", "parameters", "training time",
                                 "inference / 1,000 images"], rows, {(best_row, 1)},
                                caption="A committee's cost is the sum of its members' (every member runs on every image)."))
        fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.0))
        plots.accuracy_bars(ax, names, np.array(acc), np.array(ci), is_c)
        sec.blocks.append(self.save(fig, "accuracy.png", f"{split.capitalize()} accuracy with 95 % Wilson intervals."))
        cost = [self.models[n].get("infer_seconds_per_1000") for n in names]
        if all(cost) and len(names) > 1:
            # Committees of one run share a cost (all members run), so only the main rule is named.
            labels = [n if not c or n == f"committee ({self.main_rule})" else "" for n, c in zip(names, is_c)]
            fig, ax = plt.subplots(figsize=(7.5, 4.2))
            plots.accuracy_vs_cost(ax, 1000 * np.array(cost), 100 * np.array(acc), 100 * np.array(ci), labels,
                                   ["committee" if c else "member" for c in is_c], "inference, ms per 1,000 images (CPU)")
            ax.set_xscale("log")
            sec.blocks.append(self.save(fig, "pareto.png", "Accuracy against inference cost. The dashed line is the Pareto "
                                        "front: nothing is both cheaper and more accurate than a point on it."))
        rules = [[r, e.get("description", ""), ", ".join(f"{m} {w:.3f}" for m, w in zip(e["members"], e["rule_params"]["weights"]))
                  if "weights" in e.get("rule_params", {}) else "–"] for r, e in self.committees.items()]
        if rules:
            sec.blocks.append(Table(["rule", "what it does", "weights (fitted on validation)"], rules))
        return sec

    # 6
    def confusion(self) -> Section:
        import matplotlib.pyplot as plt

        from committee import plots

        sec = Section("confusion", "Confusion matrices")
        sec.p("Rows are the true class, columns the predicted class; left counts, right each row divided by its total (recall on the diagonal).")
        for name, e in self.models.items():
            cm = np.array(self.s(e)["confusion_matrix"])
            fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
            plots.confusion(a, cm, self.classes, title=f"{name}: counts")
            plots.confusion(b, cm, self.classes, normalize=True, title=f"{name}: row-normalised")
            fig.tight_layout()
            sec.blocks.append(self.save(fig, f"confusion_{slug(name)}.png", f"Confusion matrix of {name}."))
        return sec

    # 7
    def reports(self) -> Section:
        sec = Section("classification-reports", "Classification reports")
        sec.p("Precision, recall and F1 per class (scikit-learn's numbers); the two weakest classes by F1 are highlighted.")
        for name, e in self.models.items():
            rep = self.s(e)["classification_report"]
            f1 = [rep[c]["f1-score"] for c in self.classes]
            weakest = set(np.argsort(f1)[:2].tolist())
            rows, hl = [], set()
            for k, c in enumerate(self.classes):
                r = rep[c]
                rows.append([c, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}", f"{int(r['support']):,}"])
                if k in weakest:
                    hl |= {(k, j) for j in range(5)}
            for avg in ("macro avg", "weighted avg"):
                r = rep[avg]
                rows.append([avg, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}", f"{int(r['support']):,}"])
            sec.h3(name)
            sec.blocks.append(Table(["class", "precision", "recall", "F1", "support"], rows, hl))
        return sec

    # 8
    def strengths(self) -> Section:
        sec = Section("strengths", "Strengths and weaknesses")
        rows = []
        for name, e in self.models.items():
            s = self.s(e)
            f1 = np.array([s["classification_report"][c]["f1-score"] for c in self.classes])
            order = np.argsort(f1)
            pairs = top_confusions(np.array(s["confusion_matrix"]), 3)
            rows.append([name,
                         ", ".join(f"{self.classes[k]} ({f1[k]:.3f})" for k in order[::-1][:2]),
                         ", ".join(f"{self.classes[k]} ({f1[k]:.3f})" for k in order[:2]),
                         "; ".join(f"{self.classes[i]} → {self.classes[j]} ({n})" for i, j, n in pairs)])
        sec.blocks.append(Table(["model", "best classes (F1)", "worst classes (F1)", "most confused (true → predicted, count)"], rows))
        if self.doc["has_test"] and self.committees:
            crow = []
            for r, e in self.committees.items():
                v = e["vs_best_member"]
                ci = v.get("gain_ci")
                crow.append([f"committee ({r})", str(v["fixed"]), str(v["broken"]), f"{v['fixed'] - v['broken']:+d}",
                             f"{100 * v['gain']:+.2f}" + (f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]" if ci else ""),
                             f"{v['mcnemar_p']:.3g}"])
            sec.p(f"Against the best member ({self.doc['best_member']}, chosen on validation): images the committee fixed "
                  f"(it is right, the member wrong) and broke (the reverse). **{self.doc['all_members_wrong']:,}** test images are "
                  f"missed by every member, so no averaging rule can get them; an oracle that always picks a right member "
                  f"would score {pct(self.doc['oracle_accuracy'])}.")
            sec.blocks.append(Table(["committee", "fixed", "broken", "net", "gain, points [95 % bootstrap]", "McNemar p"], crow))
        return sec

    # 9
    def mistakes(self) -> Section:
        from committee import plots

        sec = Section("mistakes", "Mistakes")
        if self.images is None or not self.doc["has_test"] or not self.main_rule:
            why = ("the test images are not available" if self.images is None else
                   "this run has no test labels" if not self.doc["has_test"] else "no committee rule was evaluated")
            sec.p(f"Left out: {why}.")
            return sec
        probs = self._committee_test_probs(self.main_rule)
        labels = self.run.labels("test")
        pred, conf = probs.argmax(1), probs.max(1)
        test_images = self.images[self.split_idx["test"]]
        s = self.committees[self.main_rule]
        f1 = [s["classification_report"][c]["f1-score"] for c in self.classes]
        hard = int(np.argmin(f1))
        (i, j, n), = top_confusions(np.array(s["confusion_matrix"]), 1) or [(hard, hard, 0)]
        for mask, title, fname in (
            # Low F1 can come from low recall or low precision: show both kinds of mistake.
            ((labels == hard) != (pred == hard), f"Hardest class, {self.classes[hard]}: mistakes where it is the true or the "
             f"predicted class, most confident first", "mistakes_hardest.png"),
            ((labels == i) & (pred == j), f"Most confused pair: {self.classes[i]} predicted as {self.classes[j]} "
             f"({n} image{'s' if n != 1 else ''})", "mistakes_pair.png"),
        ):
            idx = np.flatnonzero(mask)
            idx = idx[np.argsort(-conf[idx])][:16]
            if not len(idx):
                continue
            fig = plots.mistakes(test_images[idx], [self.classes[k] for k in labels[idx]], [self.classes[k] for k in pred[idx]],
                                 conf[idx])
            sec.blocks.append(self.save(fig, fname, f"{title}. Committee ({self.main_rule}) predictions with their probability."))
        if not any(isinstance(b, Figure) for b in sec.blocks):
            sec.p(f"The {self.main_rule} committee made no mistakes on the test set: there is nothing to show.")
        return sec

    def _committee_test_probs(self, rule: str) -> np.ndarray:
        e = self.committees[rule]
        stack = np.stack([self.run.load_member(m).probs_test for m in e["members"]])
        return combine(rule, e["rule_params"], stack)

    # 10
    def analysis(self) -> Section:
        sec = Section("analysis", "Analysis")
        if not self.main_rule:
            sec.p("No committee rule was evaluated.")
            return sec
        c = self.s(self.committees[self.main_rule])
        rep, cm = c["classification_report"], np.array(c["confusion_matrix"])
        f1 = np.array([rep[k]["f1-score"] for k in self.classes])
        hard = int(np.argmin(f1))
        row = cm[hard].copy()
        row[hard] = 0
        targets = np.argsort(-row)[:3]
        wrong = int(row.sum())
        confused = [t for t in targets if row[t]]
        upper_body = {"T-shirt/top", "Pullover", "Coat", "Shirt"}
        why = (": all upper-body garments with much the same silhouette at 28×28 pixels, told apart mainly by collars, "
               "buttons and texture that the low resolution blurs."
               if confused and {self.classes[hard], *(self.classes[t] for t in confused)} <= upper_body | {"Dress"} else ".")
        sec.p(f"**Hardest class: {self.classes[hard]}** (F1 {f1[hard]:.3f}, recall {rep[self.classes[hard]]['recall']:.3f}). "
              f"Of its {int(cm[hard].sum()):,} images, {wrong:,} were misclassified"
              + (", mostly as " + ", ".join(f"{self.classes[t]} ({row[t]})" for t in confused) if confused else "") + why)
        easy = int(np.argmax(f1))
        sec.p(f"Easiest class: {self.classes[easy]} (F1 {f1[easy]:.3f}).")
        if self.doc["has_test"]:
            v = self.committees[self.main_rule]["vs_best_member"]
            if v["mcnemar_p"] < 0.05:
                sig = f"significant (McNemar p = {v['mcnemar_p']:.3g} < 0.05)"
            else:
                sig = f"not significant (McNemar p = {v['mcnemar_p']:.3g}): it is inside the noise of one test set"
            sec.p(f"The {self.main_rule} committee's gain over {v['member']} is {100 * v['gain']:+.2f} points, {sig}.")
        costs = {n: e.get("infer_seconds_per_1000") for n, e in self.members.items() if e.get("infer_seconds_per_1000")}
        ccost = self.committees[self.main_rule].get("infer_seconds_per_1000")
        if costs and ccost:
            best = self.doc["best_member"]
            cheapest = min(costs, key=costs.get)
            sec.p(f"Cost: the committee needs {1000 * ccost:.0f} ms per 1,000 images, "
                  f"{ccost / costs[best]:.1f}× its best member ({best}) and {ccost / costs[cheapest]:.0f}× its cheapest ({cheapest}); "
                  f"it holds {self.committees[self.main_rule].get('parameters_total', 0):,} parameters.")
        if self.doc.get("skipped_members"):
            sec.p(f"Left out of this report (no saved probabilities yet): {', '.join(self.doc['skipped_members'])}.")
        return sec

    # Optional: the seed study's published numbers next to ours (seed split only).
    SEED_PUBLISHED = {"shallow": 0.9010, "basic_cnn": 0.9203, "deep_cnn": 0.9182, "committee (mean)": 0.9353}

    def seed_comparison(self) -> Section | None:
        if self.doc["split"] != "seed" or not self.doc["has_test"]:
            return None
        sec = Section("seed-comparison", "Against the seed study")
        sec.p("The seed study's published test accuracies (one run each, no intervals, Keras, on its own 2,800-image "
              "split) next to ours on the same protocol (pooled 86/10/4 split, 280 test images per class) with 95 % intervals. "
              "A published number inside our interval is a reproduction; with 2,800 test images an interval is about ±1 point wide.")
        rows = []
        for name, published in self.SEED_PUBLISHED.items():
            e = self.models.get(name)
            if e is None:
                continue
            lo, hi = e["accuracy_ci"]
            inside = "yes" if lo <= published <= hi else ("ours higher" if published < lo else "ours lower")
            rows.append([name, pct(published), pct_ci(e), inside])
        sec.blocks.append(Table(["model", "seed study", "ours [95 % CI]", "published value inside our interval?"], rows))
        return sec

    def ablation(self) -> Section | None:
        import json

        import matplotlib.pyplot as plt

        from committee import ablation, plots

        path = self.run.path / "ablation.json"
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        sec = Section("ablation", "Ablation")
        sec.p(f"Base **{doc['base']}**, factors {', '.join(doc['factors'])}, switched on one at a time and all together; "
              f"{len(doc['seeds'])} seeds per variant (initialisation and batch order), the same split and epoch budget, best "
              f"epoch chosen on validation. Differences to the base are paired by seed, with a 95 % t-interval over seeds.")
        rows = []
        for e in doc["variants"]:
            d = e.get("diff_accuracy")
            rows.append([e["variant"], str(len(e["seeds"])),
                         f"{100 * e['accuracy']['mean']:.2f} ± {100 * e['accuracy']['std']:.2f} %",
                         f"{e['macro_f1']['mean']:.4f} ± {e['macro_f1']['std']:.4f}",
                         f"{e['nll']['mean']:.4f} ± {e['nll']['std']:.4f}",
                         f"{100 * d['mean']:+.2f} [{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}]" if d else "–",
                         secs(e["train_seconds"]["mean"])])
        sec.blocks.append(Table(["variant", "seeds", "test accuracy (mean ± std)", "macro-F1", "NLL",
                                 "Δ accuracy vs base [95 % CI]", "training time"], rows))
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        base_vals = {e["variant"]: e["accuracy"]["values"] for e in doc["variants"]}
        plots.ablation(ax, list(base_vals), [np.array(v) for v in base_vals.values()],
                       [ablation.t_interval(np.array(v)) for v in base_vals.values()])
        sec.blocks.append(self.save(fig, "ablation.png", "Test accuracy per seed and variant."))
        for e in doc["variants"]:
            if "verdict" in e:
                sec.p(e["verdict"] + ".")
        return sec

    def calibration(self) -> Section | None:
        import matplotlib.pyplot as plt

        from committee import plots

        if not all("ece" in self.s(e) for e in self.models.values()):
            return None
        sec = Section("calibration", "Calibration")
        sec.p("How far the probabilities can be trusted: NLL and Brier score (lower is better) and the expected calibration "
              "error (ECE, 15 equal-width confidence bins: the average gap between confidence and accuracy).")
        rows = [[n, f"{self.s(e)['nll']:.4f}", f"{self.s(e)['brier']:.4f}", f"{100 * self.s(e)['ece']:.2f} %"]
                for n, e in self.models.items()]
        best_ece = int(np.argmin([self.s(e)["ece"] for e in self.models.values()]))
        sec.blocks.append(Table(["model", "NLL", "Brier", "ECE"], rows, {(best_ece, 3)}))
        if "calibrated" in self.committees and "mean" in self.committees:
            t = self.committees["calibrated"]["rule_params"]["temperature"]
            before, after = self.s(self.committees["mean"]), self.s(self.committees["calibrated"])
            direction = "softens (the average was over-confident)" if t > 1 else "sharpens (the average was under-confident)"
            sec.p(f"Temperature scaling of the mean committee, fitted on validation: T = {t:.3f}, which {direction}. "
                  f"ECE {100 * before['ece']:.2f} % → {100 * after['ece']:.2f} %, NLL {before['nll']:.4f} → {after['nll']:.4f}; "
                  f"accuracy cannot change (a temperature keeps the top class).")
        shown = [(self.doc["best_member"], self.members[self.doc["best_member"]])]
        shown += [(f"committee ({r})", self.committees[r]) for r in ("mean", "calibrated") if r in self.committees]
        fig, axes = plt.subplots(1, len(shown), figsize=(3.6 * len(shown), 3.4), squeeze=False)
        for ax, (name, e) in zip(axes[0], shown):
            rel = self.s(e)["reliability"]
            plots.reliability_diagram(ax, rel["confidence"], rel["accuracy"], rel["count"], f"{name}\nECE {100 * rel['ece']:.2f} %")
        fig.tight_layout()
        sec.blocks.append(self.save(fig, "reliability.png", "Reliability diagrams: bars on the diagonal are perfectly calibrated."))
        return sec

    def diversity(self) -> Section | None:
        import matplotlib.pyplot as plt

        from committee import plots

        div = self.doc.get("diversity")
        if not div or len(div["members"]) < 2:
            return None
        sec = Section("diversity", "Diversity")
        sec.p(f"A committee helps only where its members err differently. Some member is right on "
              f"**{pct(div['oracle_accuracy'])}** of the test images (the oracle), against {pct(self.members[self.doc['best_member']]['accuracy'])} "
              f"for the best member alone: that gap is the most any rule could gain.")
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
        plots.matrix(a, np.array(div["disagreement"]), div["members"], "Disagreement (share of images)")
        plots.matrix(b, np.array(div["error_correlation"]), div["members"], "Error correlation", cmap="Oranges")
        fig.tight_layout()
        sec.blocks.append(self.save(fig, "diversity.png", "Pairwise disagreement and correlation of errors on the test set."))
        fig, ax = plt.subplots(figsize=(6, 3))
        plots.growth(ax, div["growth"]["order"], np.array(div["growth"]["accuracy"]))
        sec.blocks.append(self.save(fig, "growth.png", "Mean-committee test accuracy as members are added, best on validation first."))
        return sec

    def build(self) -> list[Section]:
        sections = [self.summary(), self.data(), self.architectures(), self.training(), self.results(), self.seed_comparison(),
                    self.ablation(), self.calibration(), self.diversity(), self.confusion(), self.reports(), self.strengths(),
                    self.mistakes(), self.analysis()]
        return [s for s in sections if s is not None]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def top_confusions(cm: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as (true, predicted, count), count > 0."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None)[:k]
    return [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(flat, off.shape)) if off[i, j] > 0]


# --- rendering ------------------------------------------------------------

CSS = """
:root{--fg:#1d2430;--muted:#5b6575;--accent:#2f4b7c;--line:#e3e7ee;--hl:#fff1d6}
*{box-sizing:border-box}body{font:15px/1.55 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);margin:0;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px 18px 60px;background:#fff}
h1{font-size:1.7em;margin:.2em 0 .1em}h2{font-size:1.3em;margin:2em 0 .6em;padding-bottom:.25em;border-bottom:2px solid var(--accent);color:var(--accent)}
h3{font-size:1.05em;margin:1.4em 0 .4em}nav{font-size:.9em;margin:.8em 0 1.2em;color:var(--muted)}nav a{color:var(--accent);margin-right:.9em;text-decoration:none}
.meta{color:var(--muted);font-size:.9em}figure{margin:1em 0}figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:var(--muted);font-size:.85em;text-align:center;margin-top:.3em}
.tw{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0 1em;font-size:.88em;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}th{background:#eef1f6}
td.n,th.n{text-align:right;white-space:nowrap}td.hl{background:var(--hl);font-weight:600}caption{caption-side:bottom;color:var(--muted);font-size:.85em;text-align:left;padding-top:4px}
#summary p{font-size:1.05em}
@media (max-width:600px){body{font-size:14px}main{padding:12px 10px}th,td{padding:3px 6px}}
@media print{body{background:#fff}main{max-width:none;padding:0}nav{display:none}h2{break-after:avoid}figure,table{break-inside:avoid}}
"""


def inline(text: str) -> str:
    """HTML-escape, then **bold** and `code`."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def is_number(cell: str) -> bool:
    """Right-align columns of numbers, percentages, times and intervals."""
    return bool(re.fullmatch(r"[\s*]*[-+–(\[]?[\d.,]*[\d–][\d.,% \[\]×±msin/()–-]*[*]*", cell)) or cell in ("", "–")


def render_html(title: str, subtitle: str, sections: list[Section], fig_dir: Path) -> str:
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width,initial-scale=1'>"
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>",
           f"<h1>{html.escape(title)}</h1><p class='meta'>{inline(subtitle)}</p><nav>"
           + "".join(f"<a href='#{s.id}'>{html.escape(s.title)}</a>" for s in sections) + "</nav>"]
    for s in sections:
        out.append(f"<section id='{s.id}'><h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, str):
                out.append(f"<p>{inline(b)}</p>")
            elif isinstance(b, tuple):
                out.append(f"<h3>{inline(b[1])}</h3>")
            elif isinstance(b, Table):
                numeric = [j > 0 and all(is_number(r[j]) for r in b.rows if j < len(r)) for j in range(len(b.header))]
                head = "".join(f"<th{' class=n' if numeric[j] else ''}>{inline(h)}</th>" for j, h in enumerate(b.header))
                body = "".join("<tr>" + "".join(
                    f"<td class='{'n' if numeric[j] else ''}{' hl' if (i, j) in b.highlight else ''}'>{inline(c)}</td>"
                    for j, c in enumerate(r)) + "</tr>" for i, r in enumerate(b.rows))
                cap = f"<caption>{inline(b.caption)}</caption>" if b.caption else ""
                out.append(f"<div class='tw'><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
            elif isinstance(b, Figure):
                data = base64.b64encode((fig_dir / b.name).read_bytes()).decode()
                out.append(f"<figure><img alt='{html.escape(b.caption)}' src='data:image/png;base64,{data}'>"
                           f"<figcaption>{inline(b.caption)}</figcaption></figure>")
        out.append("</section>")
    out.append("</main></body></html>\n")
    return "\n".join(out)


def render_markdown(title: str, subtitle: str, sections: list[Section]) -> str:
    out = [f"# {title}", "", subtitle, ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, str):
                out += [b, ""]
            elif isinstance(b, tuple):
                out += [f"### {b[1]}", ""]
            elif isinstance(b, Table):
                out.append("| " + " | ".join(b.header) + " |")
                out.append("|" + "|".join(["---"] + ["---:"] * (len(b.header) - 1)) + "|")
                for i, r in enumerate(b.rows):
                    cells = [f"**{c}**" if (i, j) in b.highlight and c and not c.startswith("**") else c for j, c in enumerate(r)]
                    out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
                out += ([f"", f"*{b.caption}*"] if b.caption else []) + [""]
            elif isinstance(b, Figure):
                out += [f"![{b.caption}](figures/{b.name})", "", f"*{b.caption}*", ""]
    return "\n".join(out)


def write_report(run: RunDir, doc: dict | None = None) -> Path:
    """Write report.html, report.md and figures/*.png for a run; returns the HTML path."""
    import json

    from committee.evaluate import evaluate_run

    start = time.perf_counter()
    if doc is None:
        metrics = run.path / "metrics.json"
        try:
            doc = json.loads(metrics.read_text()) if metrics.exists() else evaluate_run(run)
        except ValueError as exc:
            raise CommitteeError(f"{metrics}: unreadable ({exc}); run `committee evaluate` again") from None
    builder = ReportBuilder(run, doc)
    sections = builder.build()
    cfg = run.config()
    title = "Committee report"
    subtitle = (f"Run `{run.path}` · preset {cfg.preset} · split {cfg.split} · seed {cfg.seed} · members "
                f"{', '.join(builder.members)} · generated {time.strftime('%Y-%m-%d %H:%M')}")
    if builder.left_out:
        sections[0].p("Left out of this report: " + "; ".join(builder.left_out) + ".")
    write_text(run.path / "report.md", render_markdown(title, subtitle, sections))
    html_path = run.path / "report.html"
    write_text(html_path, render_html(title, subtitle, sections, builder.fig_dir))
    builder.seconds = time.perf_counter() - start
    return html_path
