"""The split stage: counts, labels, determinism, hold-outs, reports, and its error paths.

The picking logic runs in-process on tiny synthetic arrays; the error paths run the real
stage (``python -m stages.split`` in a tiny project whose ``data/raw`` is written
in-process) and check exit status 2, one ``error:`` line, and no new files. One test runs
``dvc repro`` of fetch + split end to end (marked slow). No TensorFlow anywhere.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import (
    CIFAR10_CLASSES,
    SHARED_ARCHIVE,
    SHARED_ARCHIVE_ABSENT,
    SHARED_ARCHIVE_SHA256,
    TINY_CLASSES,
    TINY_TEST,
    TINY_TRAIN,
    TinyProject,
    build_image_folder,
    pack_tar_gz,
    sha256_of,
    synthetic_images,
)

from imbalance import params
from imbalance.cli import UserError
from imbalance.data import fetch, image_folder, split
from imbalance.layout import Layout
from imbalance.params import Classes, Split

NEG, POS = 0, 1  # airplane, automobile in TINY_CLASSES


def make_split(**changes: Any) -> Split:
    values: dict[str, Any] = {
        "n_majority": 20,
        "n_minority": 6,
        "val_fraction": 0.25,
        "validation": "holdout",
    }
    return Split(**{**values, **changes})


CLASSES = Classes(negative="airplane", positive="automobile")


def make_raw(n_train: int = TINY_TRAIN, n_test: int = TINY_TEST, pixels: bool = True) -> split.Raw:
    """Three classes; classes interleaved so picks are not trivially contiguous."""

    def side(n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        y = np.tile(np.arange(len(TINY_CLASSES), dtype=np.int64), n)
        if not pixels:  # picking and counting only look at labels
            return np.zeros((0, 32, 32, 3), np.uint8), y
        x = np.empty((len(y), 32, 32, 3), np.uint8)
        for i, cls in enumerate(TINY_CLASSES):
            x[y == i] = synthetic_images(n, cls, side=name)
        return x, y

    x_train, y_train = side(n_train, "train")
    x_test, y_test = side(n_test, "test")
    return split.Raw(x_train, y_train, x_test, y_test, TINY_CLASSES)


@pytest.fixture(scope="module")
def raw() -> split.Raw:
    return make_raw()


def counts_of(raw: split.Raw, spec: Split, seed: int = 0) -> dict[str, dict[str, int]]:
    neg, pos = split.check(raw, CLASSES, spec)
    return split.class_counts(raw, split.pick(raw, neg, pos, spec, seed), neg, pos)


# ----------------------------------------------------------------------------- counts


def test_tiny_counts_and_file_format(raw: split.Raw) -> None:
    spec = make_split()
    picks = split.pick(raw, NEG, POS, spec, seed=0)
    assert list(picks) == list(split.SETS)
    assert counts_of(raw, spec) == {
        "train_balanced": {"airplane": 15, "automobile": 15},
        "val_balanced": {"airplane": 5, "automobile": 5},
        "train_imbalanced": {"airplane": 15, "automobile": 4},
        "val_imbalanced": {"airplane": 5, "automobile": 2},
        "test": {"airplane": 10, "automobile": 10},
        "balanced": {"airplane": 20, "automobile": 20},
        "imbalanced": {"airplane": 20, "automobile": 6},
    }
    for choice in picks.values():
        x, y = split.materialize(raw, choice, POS)
        assert x.dtype == np.uint8 and x.shape == (len(choice.indices), 32, 32, 3)
        assert y.dtype == np.uint8 and set(np.unique(y)) == {0, 1}


def test_default_counts_match_the_study() -> None:
    """5000 per class as in CIFAR-10: 4500/4500 + 500/500, 4500/45 + 500/5, test 1000/1000."""
    big = make_raw(5000, 1000, pixels=False)
    spec = Split(n_majority=5000, n_minority=50, val_fraction=0.1, validation="holdout")
    counts = counts_of(big, spec)
    assert counts["train_balanced"] == {"airplane": 4500, "automobile": 4500}
    assert counts["val_balanced"] == {"airplane": 500, "automobile": 500}
    assert counts["train_imbalanced"] == {"airplane": 4500, "automobile": 45}
    assert counts["val_imbalanced"] == {"airplane": 500, "automobile": 5}
    assert counts["test"] == {"airplane": 1000, "automobile": 1000}


def test_labels_follow_the_convention(raw: split.Raw) -> None:
    """y = 1 exactly for images of classes.positive; no third class sneaks in."""
    for name, choice in split.pick(raw, NEG, POS, make_split(), seed=3).items():
        source_y = raw.side(choice.side)[1][choice.indices]
        _, y = split.materialize(raw, choice, POS)
        assert set(np.unique(source_y)) <= {NEG, POS}, name
        np.testing.assert_array_equal(y, (source_y == POS).astype(np.uint8))
        x, _ = split.materialize(raw, choice, POS)
        np.testing.assert_array_equal(x, raw.side(choice.side)[0][choice.indices])


def test_swapped_classes_swap_labels(raw: split.Raw) -> None:
    swapped = Classes(negative="automobile", positive="airplane")
    neg, pos = split.check(raw, swapped, make_split())
    assert (neg, pos) == (1, 0)
    choice = split.pick(raw, neg, pos, make_split(), seed=0)["test"]
    _, y = split.materialize(raw, choice, pos)
    np.testing.assert_array_equal(y, (raw.y_test[choice.indices] == 0).astype(np.uint8))


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_arrays_other_seed_other_picks(raw: split.Raw) -> None:
    spec = make_split()
    a, b = (split.pick(raw, NEG, POS, spec, seed=7) for _ in range(2))
    c = split.pick(raw, NEG, POS, spec, seed=8)
    for name in split.SETS:
        np.testing.assert_array_equal(a[name].indices, b[name].indices)
        xa, ya = split.materialize(raw, a[name], POS)
        xb, yb = split.materialize(raw, b[name], POS)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for name in ("train_balanced", "train_imbalanced", "val_imbalanced"):
        assert set(a[name].indices) != set(c[name].indices), name
    np.testing.assert_array_equal(a["test"].indices, c["test"].indices)  # same for all seeds


def test_sets_are_nested_disjoint_and_shuffled(raw: split.Raw) -> None:
    picks = {k: set(v.indices) for k, v in split.pick(raw, NEG, POS, make_split(), 0).items()}
    assert picks["train_imbalanced"] < picks["train_balanced"]
    assert picks["val_imbalanced"] < picks["val_balanced"]
    assert not picks["train_balanced"] & picks["val_balanced"]
    negatives = {i for i in picks["train_balanced"] if raw.y_train[i] == NEG}
    assert negatives == {i for i in picks["train_imbalanced"] if raw.y_train[i] == NEG}
    y = split.materialize(raw, split.pick(raw, NEG, POS, make_split(), 0)["train_balanced"], POS)[1]
    steps = np.diff(y.astype(np.int64))
    assert np.any(steps > 0) and np.any(steps < 0), "file not shuffled"


def test_validation_test_uses_the_test_set(raw: split.Raw) -> None:
    spec = make_split(validation="test")
    picks = split.pick(raw, NEG, POS, spec, seed=0)
    for name in ("val_balanced", "val_imbalanced"):
        assert picks[name].side == "test"
        np.testing.assert_array_equal(picks[name].indices, picks["test"].indices)
    counts = counts_of(raw, spec)
    assert counts["train_balanced"] == {"airplane": 20, "automobile": 20}
    assert counts["train_imbalanced"] == {"airplane": 20, "automobile": 6}
    assert counts["imbalanced"] == counts["train_imbalanced"]


def test_validation_kfold_validates_on_the_training_files(raw: split.Raw) -> None:
    """k-fold holds nothing out: the training files are the study protocol's (the same
    images, the same order), and each val file is its training file, scored out of fold."""
    kfold = split.pick(raw, NEG, POS, make_split(validation="kfold"), seed=3)
    study = split.pick(raw, NEG, POS, make_split(validation="test"), seed=3)
    for name in ("balanced", "imbalanced"):
        train = kfold[f"train_{name}"]
        np.testing.assert_array_equal(train.indices, study[f"train_{name}"].indices)
        assert kfold[f"val_{name}"] is train
    np.testing.assert_array_equal(kfold["test"].indices, study["test"].indices)


def test_kfold_needs_a_positive_in_every_fold(raw: split.Raw) -> None:
    with pytest.raises(UserError) as err:
        split.check(raw, CLASSES, make_split(n_minority=2, validation="kfold", folds=3))
    assert str(err.value) == (
        "split.folds: 3 folds of 2 positive images leave a fold without one "
        "(cross-validation scores each fold on its own); use split.folds <= 2 or "
        "split.n_minority >= 3"
    )
    counts = counts_of(raw, make_split(n_minority=3, validation="kfold", folds=3))
    assert counts["val_imbalanced"] == counts["train_imbalanced"]
    assert counts["train_imbalanced"] == {"airplane": 20, "automobile": 3}


# ----------------------------------------------------------------------------- hold-out rules


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 0.9])
def test_validation_never_lacks_a_positive(raw: split.Raw, fraction: float) -> None:
    """Every (n_minority, val_fraction) either splits with a positive on both sides of
    each hold-out, or is refused with advice that itself works."""
    for n_min in range(1, 16):
        spec = make_split(n_minority=n_min, val_fraction=fraction)
        try:
            counts = counts_of(raw, spec)
        except UserError as err:
            message = str(err)
            assert "split.n_minority" in message or "split.val_fraction" in message
            for suggestion in _suggestions(message, spec):
                counts_of(raw, suggestion)  # the advice must be valid
            continue
        for name in ("train_balanced", "val_balanced", "train_imbalanced", "val_imbalanced"):
            assert min(counts[name].values()) >= 1, (n_min, fraction, name, counts[name])


def _suggestions(message: str, spec: Split) -> list[Split]:
    out = []
    if m := re.search(r"split\.val_fraction [<>]= ([\d.]+)", message):
        out.append(make_split(n_minority=spec.n_minority, val_fraction=float(m.group(1))))
    if m := re.search(r"split\.n_minority >= (\d+)", message):
        n = int(m.group(1))
        if n <= spec.n_majority:
            out.append(make_split(n_minority=n, val_fraction=spec.val_fraction))
    return out


def test_smallest_count_is_smallest() -> None:
    for f in (0.01, 0.1, 0.25, 0.5, 0.8, 0.95):
        n = split.smallest_count(f)
        assert 1 <= split.val_size(n, f) <= n - 1
        assert all(not 1 <= split.val_size(k, f) <= k - 1 for k in range(1, n))


def test_val_size_rounds_half_up() -> None:
    assert [split.val_size(n, 0.1) for n in (4, 5, 50, 5000)] == [0, 1, 5, 500]
    assert split.val_size(6, 0.25) == 2  # 1.5 -> 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"n_minority": 4, "val_fraction": 0.1},
            "split.val_fraction / split.n_minority: 0.1 × 4 rounds to 0, which leaves the "
            "imbalanced validation set without a positive image (early stopping needs one); "
            "use split.val_fraction >= 0.125 or split.n_minority >= 5, or split.validation: test",
        ),
        (
            {"n_minority": 1},
            "split.n_minority: 1 positive image cannot be in both the imbalanced training and "
            "validation sets; use split.n_minority >= 2 (with split.val_fraction 0.25), or "
            "split.validation: test",
        ),
        (
            {"n_minority": 2, "val_fraction": 0.8},
            "split.val_fraction: 0.8 of split.n_minority=2 holds out every positive image, which "
            "leaves the imbalanced training set without one; use split.val_fraction <= 0.7499 or "
            "split.n_minority >= 3",
        ),
    ],
)
def test_impossible_hold_out_is_explained(
    raw: split.Raw, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError) as err:
        split.check(raw, CLASSES, make_split(**changes))
    assert str(err.value) == message


def test_validation_test_needs_no_hold_out(raw: split.Raw) -> None:
    counts = counts_of(raw, make_split(n_minority=1, validation="test"))
    assert counts["train_imbalanced"] == {"airplane": 20, "automobile": 1}


# ----------------------------------------------------------------------------- data checks


def test_unknown_class_lists_the_available_ones(raw: split.Raw) -> None:
    with pytest.raises(
        UserError, match=r"classes\.positive: 'truck' .* airplane, automobile, bird"
    ):
        split.check(raw, Classes(negative="airplane", positive="truck"), make_split())


def test_counts_above_the_source_name_the_maximum(raw: split.Raw) -> None:
    with pytest.raises(UserError, match=r"split\.n_majority: 31 .* the maximum is 30"):
        split.check(raw, CLASSES, make_split(n_majority=31))
    with pytest.raises(UserError, match=r"split\.n_minority: 21 .* the maximum is 20"):
        split.check(raw, CLASSES, make_split(n_minority=21))


def test_a_class_without_test_images_is_refused() -> None:
    raw = make_raw()
    keep = raw.y_test != POS
    no_pos = split.Raw(raw.x_train, raw.y_train, raw.x_test[keep], raw.y_test[keep], TINY_CLASSES)
    with pytest.raises(UserError, match="no test images of class 'automobile'"):
        split.check(no_pos, CLASSES, make_split())


# ----------------------------------------------------------------------------- outputs


def test_written_layout_indices_and_reports(raw: split.Raw, tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    out = layout.cifar2_dir
    counts = split.write_cifar2(layout, raw, CLASSES, make_split(), seeds=[3, 1])
    names = {f"{s}.npz" for s in split.SETS}
    assert {p.name for p in out.iterdir()} == names | {"seed3", "seed1"}
    for seed in (3, 1):
        assert {p.name for p in layout.data_dir(seed).iterdir()} == names | {"indices.json"}
    for name in names:  # the first seed's files, also at the top
        assert (out / name).read_bytes() == (layout.data_dir(3) / name).read_bytes()
    index = json.loads((layout.data_dir(1) / "indices.json").read_text())
    assert index["seed"] == 1 and index["positive"] == "automobile"
    assert index["source"] == "data/raw/cifar10.npz"
    for name in split.SETS:
        entry = index["files"][name]
        with np.load(layout.data_dir(1) / f"{name}.npz", allow_pickle=False) as npz:
            assert sorted(npz.files) == ["x", "y"]
            x_src, y_src = raw.side(entry["side"])
            np.testing.assert_array_equal(npz["x"], x_src[entry["indices"]])
            np.testing.assert_array_equal(
                npz["y"], (y_src[entry["indices"]] == POS).astype(np.uint8)
            )

    split.write_reports(layout, counts)
    metrics, plot = layout.class_counts, layout.class_distribution_plot
    figure = layout.class_distribution_figure
    assert json.loads(metrics.read_text()) == counts
    assert json.loads(plot.read_text()) == [
        {"set": "balanced", "class": "airplane", "count": 20, "label": "balanced / airplane"},
        {"set": "balanced", "class": "automobile", "count": 20, "label": "balanced / automobile"},
        {"set": "imbalanced", "class": "airplane", "count": 20, "label": "imbalanced / airplane"},
        {
            "set": "imbalanced",
            "class": "automobile",
            "count": 6,
            "label": "imbalanced / automobile",
        },
    ]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_split_keeps_the_previous_output(raw: split.Raw, tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    out = layout.cifar2_dir
    split.write_cifar2(layout, raw, CLASSES, make_split(), seeds=[0])
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(UserError):
        split.write_cifar2(layout, raw, CLASSES, make_split(n_majority=99), seeds=[0])
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert [p.name for p in out.parent.iterdir()] == ["cifar2"]


# ----------------------------------------------------------------------------- the stage


def fetched(project: TinyProject) -> TinyProject:
    """Write the tiny project's data/raw in-process (fast), as its fetch stage would."""
    p = project.params()["data"]
    src = p["sources"][p["source"]]
    got = fetch.fetch(src["location"], src["sha256"], p["max_extract_bytes"], progress=False)
    fetch.write_raw(Layout(project.root), got, src["location"])
    return project


def test_stage_writes_every_output(tiny_project: TinyProject) -> None:
    result = fetched(tiny_project).stage("split")
    assert result.returncode == 0, result.stderr
    assert "train_imbalanced 15/4" in result.stdout
    root = tiny_project.root
    for seed in (0, 1):
        assert (root / "data" / "cifar2" / f"seed{seed}" / "indices.json").is_file()
    assert json.loads((root / "metrics" / "class_counts.json").read_text())["val_imbalanced"] == {
        "airplane": 5,
        "automobile": 2,
    }
    assert (root / "plots" / "class_distribution.json").is_file()
    assert (root / "figures" / "class_distribution.png").is_file()


def test_entry_points_write_every_file_where_the_layout_says(
    tiny_project: TinyProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_fetch/run_split in-process: every output under the layout's root, none in cwd."""
    p = params.load(tiny_project.root / "params.yaml")
    layout = Layout(tmp_path / "project")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert fetch.run_fetch(p, layout).startswith("fetch: image-folder ")
    assert split.run_split(p, layout).endswith(f"-> {layout.cifar2_dir}/")
    assert list(cwd.iterdir()) == []
    index = json.loads((layout.data_dir(1) / "indices.json").read_text())
    assert index["source"] == "data/raw/cifar10.npz"  # project-relative, wherever the root
    for path in (
        layout.raw_npz,
        layout.manifest,
        layout.data_dir(1) / "indices.json",
        layout.cifar2_dir / "test.npz",
        layout.class_counts,
        layout.class_distribution_plot,
        layout.class_distribution_figure,
    ):
        assert path.is_file(), path


SPLIT_BATTERY: dict[str, tuple[dict[str, Any], str]] = {
    "unknown-negative-class": (
        {"classes.negative": "airplan"},
        "error: classes.negative: 'airplan' is not a class of the fetched data "
        "(data/raw/manifest.json); choose one of: airplane, automobile, bird",
    ),
    "unknown-positive-class": (
        {"classes.positive": "Automobile"},
        "classes.positive: 'Automobile'",
    ),
    "equal-classes": (
        {"classes.positive": "airplane"},
        "error: params.yaml: classes.negative and classes.positive are both 'airplane'",
    ),
    "n-majority-above-source": (
        {"split.n_majority": 31},
        "the balanced set needs that many training images of each class and there are 30 "
        "'airplane' and 30 'automobile'; the maximum is 30",
    ),
    "n-minority-above-majority": ({"split.n_minority": 25}, "split.n_minority: 25 is more than"),
    "n-minority-zero": (
        {"split.n_minority": 0},
        "split.n_minority: Input should be greater than 0",
    ),
    "n-majority-negative": ({"split.n_majority": -5}, "split.n_majority: Input should be greater"),
    "val-fraction-one": (
        {"split.val_fraction": 1.0},
        "split.val_fraction: Input should be less than 1",
    ),
    "val-fraction-zero": (
        {"split.val_fraction": 0.0},
        "split.val_fraction: Input should be greater",
    ),
    "val-without-positive": (
        {"split.n_minority": 4, "split.val_fraction": 0.1},
        "use split.val_fraction >= 0.125 or split.n_minority >= 5",
    ),
    "single-positive": ({"split.n_minority": 1}, "use split.n_minority >= 2"),
    "hold-out-takes-all": (
        {"split.n_minority": 2, "split.val_fraction": 0.8},
        "use split.val_fraction <= 0.7499",
    ),
    "unknown-validation-mode": ({"split.validation": "valid"}, "split.validation: Input should be"),
    "wrong-yaml-type": ({"split.n_majority": "many"}, "split.n_majority: Input should be a valid"),
    "duplicate-seeds": ({"seeds": [1, 1]}, "seeds must be distinct"),
}


@pytest.mark.parametrize("case", list(SPLIT_BATTERY))
def test_split_bad_params_one_line_no_output(tiny_project: TinyProject, case: str) -> None:
    changes, expected = SPLIT_BATTERY[case]
    fetched(tiny_project).set_params(changes)
    line = split_error(tiny_project)
    assert expected in line, line
    print(f"[{case}] {line}")


def test_split_without_fetch_says_what_to_run(tiny_project: TinyProject) -> None:
    line = split_error(tiny_project)
    assert line == "error: data/raw/manifest.json: missing; run `dvc repro fetch` first"


def split_error(project: TinyProject) -> str:
    before = project.paths()
    result = project.stage("split")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert project.paths() == before, "the failed stage left files behind"
    return errors[0]


def test_data_stages_never_import_tensorflow(tiny_project: TinyProject) -> None:
    """Every module of imbalance/data, present and future, and both stages."""
    code = (
        "import importlib, pkgutil, sys, stages.fetch, stages.split, imbalance.data as d\n"
        "names = [m.name for m in pkgutil.iter_modules(d.__path__)]\n"
        "assert {'fetch', 'split', 'extract', 'image_folder'} <= set(names), names\n"
        "for name in names: importlib.import_module(f'imbalance.data.{name}')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    result = tiny_project.run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_dvc_repro_fetch_split_then_only_what_changed(tiny_project: TinyProject) -> None:
    first = tiny_project.dvc("repro", "split")
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tiny_project.root / "data" / "cifar2" / "seed1" / "test.npz").is_file()
    status = tiny_project.dvc("status", "fetch", "split")
    assert "up to date" in status.stdout, status.stdout
    again = tiny_project.dvc("repro", "split")
    assert "Running stage" not in again.stdout, again.stdout

    tiny_project.set_params({"split.n_minority": 4})
    changed = tiny_project.dvc("repro", "split")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert "Running stage 'split'" in changed.stdout
    assert "Running stage 'fetch'" not in changed.stdout
    counts = json.loads((tiny_project.root / "metrics" / "class_counts.json").read_text())
    assert counts["imbalanced"] == {"airplane": 20, "automobile": 4}


def _study_counts(
    archive: Path, sha256: str, tmp_path: Path, n_train: int, n_test: int, n_minority: int
) -> dict[str, dict[str, int]]:
    """Fetch an image-folder archive of all ten CIFAR-10 classes (``n_train`` / ``n_test``
    per class), write data/raw, and split it as the study does (holdout, 10 %); the counts
    of seed 0. The real archive and a scaled synthetic copy of its layout both go here."""
    got = fetch.fetch(str(archive), sha256, 2 * 10**9, progress=False)
    assert got.kind == image_folder.KIND and got.verified
    assert got.data.class_names == CIFAR10_CLASSES
    assert got.data.x_train.shape == (10 * n_train, 32, 32, 3)
    assert got.data.x_test.shape == (10 * n_test, 32, 32, 3)
    assert set(got.data.counts()["train"].values()) == {n_train}
    assert set(got.data.counts()["test"].values()) == {n_test}
    layout = Layout(tmp_path / "study")
    fetch.write_raw(layout, got, str(archive))
    del got
    raw = split.load_raw(layout)
    spec = Split(n_majority=n_train, n_minority=n_minority, val_fraction=0.1, validation="holdout")
    neg, pos = split.check(raw, CLASSES, spec)
    return split.class_counts(raw, split.pick(raw, neg, pos, spec, 0), neg, pos)


def test_an_archive_laid_out_like_the_shared_copy_gives_the_scaled_study_counts(
    tmp_path: Path,
) -> None:
    """The real-data counts logic without the real data (CI has none): a synthetic archive
    with the shared copy's exact layout (``cifar10-jpeg/{train,test}/<class>/NNNN.jpg``,
    all ten classes, JPEG), at 1/50 of its size: 100 training and 20 test images per
    class, 10 minority images. Expected counts by hand: 10 % of 100 is 10 held out per
    class; 10 % of the 10 minority images is 1."""
    tree = build_image_folder(tmp_path / "tree", 100, 20, CIFAR10_CLASSES, "jpg")
    archive = pack_tar_gz(tree, tmp_path / "cifar10-jpeg.tar.gz", top="cifar10-jpeg")
    counts = _study_counts(archive, sha256_of(archive), tmp_path, 100, 20, 10)
    assert counts["train_balanced"] == {"airplane": 90, "automobile": 90}
    assert counts["val_balanced"] == {"airplane": 10, "automobile": 10}
    assert counts["train_imbalanced"] == {"airplane": 90, "automobile": 9}
    assert counts["val_imbalanced"] == {"airplane": 10, "automobile": 1}
    assert counts["test"] == {"airplane": 20, "automobile": 20}


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_ARCHIVE.exists(), reason=SHARED_ARCHIVE_ABSENT)
def test_shared_archive_fetch_and_split_give_the_study_counts(tmp_path: Path) -> None:
    counts = _study_counts(SHARED_ARCHIVE, SHARED_ARCHIVE_SHA256, tmp_path, 5000, 1000, 50)
    assert counts["train_balanced"] == {"airplane": 4500, "automobile": 4500}
    assert counts["val_balanced"] == {"airplane": 500, "automobile": 500}
    assert counts["train_imbalanced"] == {"airplane": 4500, "automobile": 45}
    assert counts["val_imbalanced"] == {"airplane": 500, "automobile": 5}
    assert counts["test"] == {"airplane": 1000, "automobile": 1000}
