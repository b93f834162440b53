"""A committee as a scikit-learn classifier: ``fit``, ``predict``, ``predict_proba``, ``classes_``.

    from committee.sklearn import CommitteeClassifier
    clf = CommitteeClassifier(members=("shallow", "basic_cnn"), epochs=5).fit(X_train, y_train)
    clf.score(X_test, y_test)                         # X: (N, H, W) or (N, H, W, C) images
    clf = CommitteeClassifier.from_run("runs/quick")  # a committee trained already (FrozenEstimator-ready)

X holds square images ``(N, S, S)`` or ``(N, S, S, C)`` (C = 1 or 3), uint8 or numbers; a 2-D
``(N, F)`` array is read as flattened pictures: each row laid out on the smallest square of at least
4 x 4 (zero-padded). Pixel values are mapped to 0-255 by a range learned in ``fit``: uint8 and
integers in 0-255 as they are, floats in [0, 1] times 255, anything else by the training data's
minimum and maximum. Labels are kept as given (strings included) in ``classes_``.

``fit`` trains a real committee run in ``run_dir`` (a new temporary directory by default, kept in
``run_dir_`` so the committee can be reported, served or exported later). Its validation split (10 %
of X, stratified) fits the committee rule; the run's test split is a placeholder of one image per
class, since scikit-learn measures with ``score(X_test, y_test)`` on data you hold out.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from committee.config.presets import preset as preset_config
from committee.serving.trained import Committee
from committee.study.api import train

MIN_SIDE = 4  # the smallest square a tabular row is laid out on (the convolutional members need a few pixels)


def pixel_range(X: np.ndarray) -> tuple[float, float]:
    """How values map to 0-255: (value at 0, value at 255), learned from the training images."""
    if X.dtype == np.uint8 or (np.issubdtype(X.dtype, np.integer) and X.min() >= 0 and X.max() <= 255):
        return 0.0, 255.0
    if X.min() >= 0 and X.max() <= 1:
        return 0.0, 1.0
    lo, hi = float(X.min()), float(X.max())
    return lo, hi if hi > lo else lo + 1.0


def as_images(X: np.ndarray, side: int | None = None) -> np.ndarray:
    """``(N, S, S)`` / ``(N, S, S, C)`` -> ``(N, S, S)`` or ``(N, 3, S, S)``; ``(N, F)`` -> ``(N, S, S)``."""
    if X.ndim == 2:
        side = side or max(MIN_SIDE, math.isqrt(X.shape[1] - 1) + 1)
        if X.shape[1] > side * side:
            raise ValueError(f"X has {X.shape[1]} features; this committee was fitted on {side}x{side} pictures")
        flat = np.zeros((len(X), side * side), X.dtype)
        flat[:, : X.shape[1]] = X
        return flat.reshape(len(X), side, side)
    if X.ndim == 4 and X.shape[-1] in (1, 3):
        X = X[..., 0] if X.shape[-1] == 1 else X.transpose(0, 3, 1, 2)
    if X.ndim not in (3, 4) or X.shape[-1] != X.shape[-2]:
        raise ValueError(f"X must hold square images (N, S, S) or (N, S, S, C) with C = 1 or 3, got shape {X.shape}")
    return np.ascontiguousarray(X)


def to_uint8(X: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    lo, hi = value_range
    return np.round(np.clip((X.astype(np.float64) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


class CommitteeClassifier(ClassifierMixin, BaseEstimator):
    """A committee of image classifiers with scikit-learn's estimator interface.

    members: architectures (``committee models`` lists them); epochs: per member (None: the
    preset's); rule: how the members' probabilities are combined; run_dir: where the run is kept
    (None: a new temporary directory); progress: show training progress bars.
    """

    def __init__(
        self,
        members: tuple[str, ...] = ("shallow", "basic_cnn"),
        epochs: int | None = 5,
        preset: str = "quick",
        rule: str = "mean",
        seed: int = 0,
        run_dir: str | None = None,
        progress: bool = False,
    ):
        self.members = members
        self.epochs = epochs
        self.preset = preset
        self.rule = rule
        self.seed = seed
        self.run_dir = run_dir
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # images (N, S, S) and (N, S, S, C)
        tags.classifier_tags.poor_score = True  # scikit-learn's toy tables are not pictures
        return tags

    def fit(self, X, y) -> CommitteeClassifier:
        """Train the committee on images ``X`` and labels ``y``."""
        X, y = validate_data(self, X, y, allow_nd=True, dtype="numeric", ensure_min_samples=2)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"y holds 1 class ({self.classes_[0]!r}); a classifier needs at least 2 classes")
        images = as_images(X)
        self.side_ = images.shape[-1] if X.ndim == 2 else None
        self.pixel_range_ = pixel_range(X)
        pixels = to_uint8(images, self.pixel_range_)
        labels = self.encoder_.transform(y)
        first_of_each = np.unique(labels, return_index=True)[1]  # the run's placeholder test split
        self.run_dir_ = str(self.run_dir or tempfile.mkdtemp(prefix="committee-sklearn-"))
        data = Path(self.run_dir_).with_name(Path(self.run_dir_).name + "-data.npz")
        names = np.array([str(c) for c in self.classes_])
        np.savez(
            data,
            x_train=pixels,
            y_train=labels,
            x_test=pixels[first_of_each],
            y_test=labels[first_of_each],
            class_names=names,
        )
        cfg = preset_config(self.preset).replace(
            data=str(data), members=tuple(self.members), epochs=self.epochs, rules=(self.rule,), seed=self.seed
        )
        with contextlib.nullcontext() if self.progress else contextlib.redirect_stderr(io.StringIO()):
            train(cfg.check(), self.run_dir_, progress=self.progress)  # progress False: no epoch lines either
        self.committee_ = Committee.load(self.run_dir_, self.rule)
        return self

    @classmethod
    def from_run(cls, run_dir: str | Path, rule: str = "calibrated") -> CommitteeClassifier:
        """A committee trained already (``committee run``), ready to predict: wrap it in
        ``sklearn.frozen.FrozenEstimator`` to keep scikit-learn from re-fitting it. It takes uint8
        images of the run's input shape, or the same flattened to rows of ``C * S * S`` pixels."""
        committee = Committee.load(run_dir, rule)
        est = cls(members=tuple(committee.members), epochs=None, rule=rule, run_dir=str(run_dir))
        c, side, _ = committee.input_shape
        est.committee_, est.run_dir_ = committee, str(run_dir)
        est.classes_ = np.array(committee.classes)
        est.encoder_ = None
        est.side_, est.pixel_range_ = None, (0.0, 255.0)
        est.input_shape_ = committee.input_shape  # X: images, or rows of C * S * S pixels (stacking beside tables)
        return est

    def images(self, X) -> np.ndarray:
        """``X`` as the committee's uint8 input."""
        check_is_fitted(self, "committee_")
        X = validate_data(self, X, allow_nd=True, dtype="numeric", reset=False)
        shape = getattr(self, "input_shape_", None)
        if shape is not None and X.ndim == 2 and X.shape[1] == math.prod(shape):
            X = X.reshape(len(X), *(shape[1:] if shape[0] == 1 else shape))
            X = X if X.ndim == 3 else X.transpose(0, 2, 3, 1)  # as_images wants channels last
        return to_uint8(as_images(X, self.side_), self.pixel_range_)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, K)``, columns in the order of ``classes_``."""
        images = self.images(X)  # first: NotFittedError before anything else
        return self.committee_.predict_proba(images)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each image, as given in ``y``."""
        probs = self.predict_proba(X)
        return self.classes_[probs.argmax(axis=1)]

    def __getstate__(self) -> dict:
        # The networks live in run_dir_; a pickle holds where, not the weights.
        return {k: v for k, v in self.__dict__.items() if k != "committee_"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "run_dir_" in state:
            self.committee_ = Committee.load(self.run_dir_, self.rule)
