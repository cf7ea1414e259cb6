"""Carve CIFAR-2 out of ``data/raw``: balanced, imbalanced, validation and test sets per seed.

What is picked, for every seed ``s`` (``numpy.random.default_rng(s)``, nothing else):

- ``split.n_majority`` training images of ``classes.negative`` (label 0) and
  ``split.n_majority`` of ``classes.positive`` (label 1) form the balanced set; the
  imbalanced set is the same negatives plus the first ``split.n_minority`` of those
  positives. The imbalanced set is thus the balanced one with positives removed, so the
  two differ in nothing but the imbalance.
- With ``split.validation: holdout`` a stratified hold-out of each set becomes its
  validation file: per class, ``round(n × split.val_fraction)`` images (halves round up;
  5000 -> 500, 50 -> 5 with the defaults). The hold-outs are nested like the sets: the
  negatives held out are the same in both, and the imbalanced set's validation positives
  are among the balanced set's, so the imbalanced training file is a subset of the
  balanced one. Every training and validation file must keep at least one image of each
  class; params that make that impossible are refused with the smallest values that work.
- With ``split.validation: test`` (the study's protocol) nothing is held out: the train
  files are the whole sets and the val files are the test set.
- With ``split.validation: kfold`` nothing is held out either, and the val files are the
  train files again: training scores every training image out of fold (stratified
  ``split.folds``-fold cross-validation, :mod:`imbalance.training.train`), so the
  validation predictions are of these images. Identical files cost DVC's cache nothing.
- ``test`` is every test image of the two classes, in source order, identical for every
  seed (so predictions of different seeds line up image by image).

Training and validation files are shuffled with the same generator. Each file holds ``x``
(uint8 N×32×32×3) and ``y`` (uint8, 1 = ``classes.positive``); ``indices.json`` records
the source indices (into ``x_train`` or ``x_test`` of ``data/raw/cifar10.npz``) of every
file, in file order. This module must stay free of TensorFlow: the stage is a data step.

Every path comes from :class:`imbalance.layout.Layout`: the stage passes the project's,
tests a temporary one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imbalance import files
from imbalance.cli import UserError
from imbalance.data.fetch import read_manifest
from imbalance.layout import Layout, seed_dir
from imbalance.params import Classes, Params, Split

SETS = ("train_balanced", "val_balanced", "train_imbalanced", "val_imbalanced", "test")
_EPS = 1e-9  # n × fraction is computed in floating point; 0.1 × 5 must round like 0.5


@dataclass(frozen=True)
class Raw:
    """The fetched arrays (``data/raw/cifar10.npz``) and their class names.

    ``layout`` is the project they were read from: messages about the data name its files.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    layout: Layout = field(default_factory=Layout)

    def side(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.x_train, self.y_train) if name == "train" else (self.x_test, self.y_test)


@dataclass(frozen=True)
class Pick:
    """One output file: which source side its images come from, and their indices in order."""

    side: str
    indices: np.ndarray


def run_split(params: Params, layout: Layout) -> str:
    """The split stage: ``data/raw`` -> ``data/cifar2`` + reports; returns its stdout line."""
    raw = load_raw(layout)
    counts = write_cifar2(layout, raw, params.classes, params.split, params.seeds)
    write_reports(layout, counts, params.split.validation)
    return summary(layout, counts, params.seeds)


def load_raw(layout: Layout) -> Raw:
    """Read the fetch stage's output; one clear line if it is missing or malformed."""
    manifest = read_manifest(layout)
    arrays = files.load_npz(
        layout.raw_npz, ("x_train", "y_train", "x_test", "y_test", "class_names")
    )
    names = tuple(str(n) for n in arrays["class_names"])
    if names != tuple(manifest["class_names"]):
        raise UserError(
            f"{layout.manifest}: class names differ from {layout.raw_npz}; rebuild both "
            "with `dvc repro --force fetch`"
        )
    for side in ("train", "test"):
        x, y = arrays[f"x_{side}"], arrays[f"y_{side}"]
        if (
            x.dtype != np.uint8
            or x.ndim != 4
            or x.shape[1:] != (32, 32, 3)
            or y.shape != x.shape[:1]
        ):
            raise UserError(
                f"{layout.raw_npz}: x_{side}/y_{side} are not N×32×32×3 uint8 images with N "
                "labels; rebuild it with `dvc repro --force fetch`"
            )
    return Raw(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        class_names=names,
        layout=layout,
    )


def val_size(n: int, fraction: float) -> int:
    """Images of one class held out for validation: ``n × fraction`` rounded half up."""
    return math.floor(n * fraction + 0.5 + _EPS)


def class_ids(raw: Raw, classes: Classes) -> tuple[int, int]:
    """(negative, positive) label ids in ``raw``; unknown or equal names are refused."""
    ids = []
    for role in ("negative", "positive"):
        name = getattr(classes, role)
        if name not in raw.class_names:
            raise UserError(
                f"classes.{role}: {name!r} is not a class of the fetched data "
                f"({raw.layout.manifest}); choose one of: {', '.join(raw.class_names)}"
            )
        ids.append(raw.class_names.index(name))
    if ids[0] == ids[1]:
        raise UserError(
            f"classes.negative and classes.positive are both {classes.negative!r}; name two "
            "different classes"
        )
    return ids[0], ids[1]


def check(raw: Raw, classes: Classes, split: Split) -> tuple[int, int]:
    """Every check that needs the data, before anything is written; returns the class ids."""
    neg, pos = class_ids(raw, classes)
    n_neg = int(np.sum(raw.y_train == neg))
    n_pos = int(np.sum(raw.y_train == pos))
    most = min(n_neg, n_pos)
    if split.n_majority > most:
        raise UserError(
            f"split.n_majority: {split.n_majority} is more than the source holds; the balanced "
            f"set needs that many training images of each class and there are {n_neg} "
            f"{classes.negative!r} and {n_pos} {classes.positive!r}; the maximum is {most}"
        )
    if split.n_minority > split.n_majority:
        raise UserError(
            f"split.n_minority: {split.n_minority} is more than split.n_majority "
            f"({split.n_majority}); the minority class must not outnumber the majority, the "
            f"maximum is {split.n_majority}"
        )
    for side, name, cls in (("test", classes.negative, neg), ("test", classes.positive, pos)):
        if not np.any(raw.y_test == cls):
            raise UserError(
                f"{raw.layout.raw_npz}: no {side} images of class {name!r}; the test set needs "
                "both classes -- use a source with test images of each class"
            )
    if split.validation == "holdout":
        f = split.val_fraction
        _check_holdout(split.n_minority, f, "split.n_minority", "imbalanced", "positive")
        _check_holdout(split.n_majority, f, "split.n_majority", "balanced", "negative or positive")
    if split.validation == "kfold" and split.n_minority < split.folds:
        raise UserError(
            f"split.folds: {split.folds} folds of {split.n_minority} positive images leave a "
            "fold without one (cross-validation scores each fold on its own); use "
            f"split.folds <= {split.n_minority} or split.n_minority >= {split.folds}"
        )
    return neg, pos


def _holds_both(n: int, f: float) -> bool:
    """A hold-out of ``n`` images leaves at least one on each side."""
    return 1 <= val_size(n, f) <= n - 1


def smallest_count(f: float) -> int:
    """The smallest class count whose hold-out at fraction ``f`` keeps one on each side."""
    n = max(2, math.ceil(0.5 / min(f, 1 - f)) - 1)
    while not _holds_both(n, f):
        n += 1
    return n


def _check_holdout(n: int, f: float, param: str, set_name: str, what: str) -> None:
    """Both sides of the hold-out of ``n`` images keep at least one: say what works if not.

    The advice names values that work: the smallest count for this ``val_fraction``, and
    the ``val_fraction`` bound for this count (to 4 decimals, rounded the safe way).
    """
    if _holds_both(n, f):
        return
    min_n = smallest_count(f)
    if n == 1:
        raise UserError(
            f"{param}: 1 {what} image cannot be in both the {set_name} training and validation "
            f"sets; use {param} >= {min_n} (with split.val_fraction {f}), or "
            "split.validation: test"
        )
    if val_size(n, f) == 0:
        min_f = math.ceil(0.5 / n * 10**4 - _EPS) / 10**4
        raise UserError(
            f"split.val_fraction / {param}: {f} × {n} rounds to 0, which leaves the {set_name} "
            f"validation set without a {what} image (early stopping needs one); use "
            f"split.val_fraction >= {min_f:g} or {param} >= {min_n}, or split.validation: test"
        )
    max_f = math.floor(((n - 0.5) / n) * 10**4 - _EPS) / 10**4
    raise UserError(
        f"split.val_fraction: {f} of {param}={n} holds out every {what} image, which leaves "
        f"the {set_name} training set without one; use split.val_fraction <= {max_f:g} or "
        f"{param} >= {min_n}"
    )


def pick(raw: Raw, neg: int, pos: int, split: Split, seed: int) -> dict[str, Pick]:
    """The source indices of every file for one seed (a function of the seed alone)."""
    rng = np.random.default_rng(seed)
    n_maj, n_min = split.n_majority, split.n_minority
    negs = rng.permutation(np.flatnonzero(raw.y_train == neg))[:n_maj]
    poss = rng.permutation(np.flatnonzero(raw.y_train == pos))[:n_maj]
    test = np.flatnonzero((raw.y_test == neg) | (raw.y_test == pos))
    if split.validation == "holdout":
        v_maj, v_min = val_size(n_maj, split.val_fraction), val_size(n_min, split.val_fraction)
        extra = n_min + (v_maj - v_min)  # balanced val = imbalanced val + poss[n_min:extra]
        parts = {
            "train_balanced": (negs[v_maj:], poss[v_min:n_min], poss[extra:]),
            "val_balanced": (negs[:v_maj], poss[:v_min], poss[n_min:extra]),
            "train_imbalanced": (negs[v_maj:], poss[v_min:n_min]),
            "val_imbalanced": (negs[:v_maj], poss[:v_min]),
        }
        picks = {name: Pick("train", _shuffled(rng, chunks)) for name, chunks in parts.items()}
    else:
        train_sets = {
            "balanced": Pick("train", _shuffled(rng, (negs, poss))),
            "imbalanced": Pick("train", _shuffled(rng, (negs, poss[:n_min]))),
        }
        picks = {}
        for name, train_pick in train_sets.items():
            picks[f"train_{name}"] = train_pick
            picks[f"val_{name}"] = train_pick if split.validation == "kfold" else Pick("test", test)
    picks["test"] = Pick("test", test)
    return {name: picks[name] for name in SETS}


def _shuffled(rng: np.random.Generator, chunks: Sequence[np.ndarray]) -> np.ndarray:
    indices = np.concatenate(chunks)
    return indices[rng.permutation(len(indices))]


def materialize(raw: Raw, choice: Pick, pos: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one file: the picked images and 0/1 labels (1 = the positive class)."""
    x, y = raw.side(choice.side)
    return x[choice.indices], (y[choice.indices] == pos).astype(np.uint8)


def class_counts(raw: Raw, picks: dict[str, Pick], neg: int, pos: int) -> dict[str, dict[str, int]]:
    """Images per class in every file, plus the whole balanced and imbalanced sets."""
    names = (raw.class_names[neg], raw.class_names[pos])
    counts = {}
    for name, choice in picks.items():
        y = raw.side(choice.side)[1][choice.indices]
        counts[name] = {names[0]: int(np.sum(y == neg)), names[1]: int(np.sum(y == pos))}
    for set_name in ("balanced", "imbalanced"):
        train, val = counts[f"train_{set_name}"], counts[f"val_{set_name}"]
        held_out = picks[f"val_{set_name}"].side == "train"
        counts[set_name] = {c: train[c] + (val[c] if held_out else 0) for c in names}
    return counts


def write_cifar2(
    layout: Layout, raw: Raw, classes: Classes, split: Split, seeds: Sequence[int]
) -> dict[str, dict[str, int]]:
    """Write every seed's files (and seeds[0]'s at the top) as one directory swap.

    ``indices.json`` names its source relative to the project root, so the files do not
    depend on where the project lives.
    """
    neg, pos = check(raw, classes, split)
    source = raw.layout.raw_npz.relative_to(raw.layout.root).as_posix()
    counts: dict[str, dict[str, int]] = {}
    with files.atomic_dir(layout.cifar2_dir) as tmp:
        for i, seed in enumerate(seeds):
            picks = pick(raw, neg, pos, split, seed)
            for name, choice in picks.items():
                x, y = materialize(raw, choice, pos)
                files.write_npz(tmp / seed_dir(seed) / f"{name}.npz", x=x, y=y)
                if i == 0:
                    files.write_npz(tmp / f"{name}.npz", x=x, y=y)
            files.write_json(
                tmp / seed_dir(seed) / "indices.json",
                {
                    "seed": seed,
                    "source": source,
                    "negative": classes.negative,
                    "positive": classes.positive,
                    "files": {
                        name: {"side": choice.side, "indices": choice.indices.tolist()}
                        for name, choice in picks.items()
                    },
                },
            )
            if i == 0:
                counts = class_counts(raw, picks, neg, pos)
    return counts


def plot_rows(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Rows for `dvc plots` (bar template): one per set and class, with a combined label."""
    return [
        {"set": set_name, "class": cls, "count": n, "label": f"{set_name} / {cls}"}
        for set_name in ("balanced", "imbalanced")
        for cls, n in counts[set_name].items()
    ]


#: How the class-distribution figure names the validation files under each protocol.
VAL_LABEL = {"holdout": "val", "test": "val = test", "kfold": "val = train, out of fold"}


def write_reports(
    layout: Layout, counts: dict[str, dict[str, int]], validation: str = "holdout"
) -> None:
    """The counts as a metrics file, as plot data, and as the study's bar chart."""
    files.write_json(layout.class_counts, counts)
    files.write_json(layout.class_distribution_plot, plot_rows(counts))
    figure = class_distribution_figure(counts, validation)
    try:
        files.write_with(
            layout.class_distribution_figure,
            lambda path: figure.savefig(path, format="png", dpi=120, metadata={"Software": None}),
            suffix=".png",
        )
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)


def class_distribution_figure(
    counts: dict[str, dict[str, int]], validation: str = "holdout"
) -> Any:
    """Side-by-side bars, balanced vs imbalanced, with the count on every bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharey=True)
    colours = ("#4c72b0", "#dd8452")
    for ax, set_name in zip(axes, ("balanced", "imbalanced"), strict=True):
        classes = list(counts[set_name])
        values = [counts[set_name][c] for c in classes]
        bars = ax.bar(classes, values, color=colours)
        ax.bar_label(bars, labels=[str(v) for v in values], padding=2)
        train, val = counts[f"train_{set_name}"], counts[f"val_{set_name}"]
        ax.set_title(
            f"{set_name}\ntrain {'/'.join(str(train[c]) for c in classes)}, "
            f"{VAL_LABEL[validation]} "
            f"{'/'.join(str(val[c]) for c in classes)}",
            fontsize=10,
        )
        ax.set_xlabel("class")
        ax.margins(y=0.15)
    axes[0].set_ylabel(
        "training + validation images" if validation == "holdout" else "training images"
    )
    figure.suptitle("CIFAR-2 class distribution")
    figure.tight_layout()
    return figure


def summary(layout: Layout, counts: dict[str, dict[str, int]], seeds: Sequence[int]) -> str:
    """One line for the stage's stdout."""
    shown = ", ".join(f"{name} {'/'.join(map(str, counts[name].values()))}" for name in SETS)
    return f"split: seeds {list(seeds)}: {shown} -> {layout.cifar2_dir}/"
