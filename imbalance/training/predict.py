"""``./dev.sh predict IMAGE... [--remedy R] [--seed S] [--threshold T]``: cars in your images.

Each image goes through one trained run (remedy ``R``, seed ``S``; defaults from the
``predict`` section of params.yaml) exactly as the study's test images did: any size or
format Pillow reads is centre-cropped to a square, resized to 32×32 RGB (CIFAR's size)
and scaled to [0, 1] float32 like :func:`imbalance.training.inputs.load_images`; the
remedy's own scoring (test-time flip averaging or not) gives the positive-class score.

The threshold is the run's tuned threshold by default: the one the evaluate stage records
in ``metrics/runs/seed<S>/<R>.json`` (``tuned_threshold.value``), recomputed here with the
same function (:func:`imbalance.threshold.choose_threshold`) from the run's own
predictions file, so it always belongs to the model used even when the committed metrics
are older than the workspace. ``--threshold 0.5`` (any number in (0, 1)) overrides it.

Where the model comes from, cheapest first: the workspace; the local DVC cache
(``dvc checkout``); the DVC remote (``dvc pull``); else the one run is trained with
``dvc repro train@R-S`` (said before it starts: minutes on the full data).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbalance import cli, params
from imbalance.cli import UserError
from imbalance.files import load_npz
from imbalance.layout import Layout
from imbalance.threshold import choose_threshold

IMAGE_SIDE = 32  # CIFAR's images are 32×32 RGB


@dataclass(frozen=True)
class Prediction:
    path: str
    score: float
    label: str


def load_image(path: Path) -> np.ndarray:
    """One image file of any size/format -> a 32×32×3 float32 array in [0, 1]."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            rgb = ImageOps.exif_transpose(image).convert("RGB")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file; give the path of an image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UserError(
            f"{path}: not an image Pillow can read; give a PNG, JPEG, BMP, GIF, TIFF or WebP file"
        ) from None
    # Centre square crop, then one high-quality downsample: CIFAR's images are square.
    small = ImageOps.fit(rgb, (IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.float32) / np.float32(255.0)


def _dvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )


def stage_name(p: params.Params, remedy: str, seed: int) -> str:
    group = "retrain" if remedy in p.retrain else "train"
    return f"{group}@{remedy}-{seed}"


def ensure_run(
    p: params.Params, layout: Layout, remedy: str, seed: int, *, say=print
) -> tuple[Path, str]:
    """The run's model (and predictions, and its seed's labels) in the workspace; how."""
    spec = p.remedy(remedy)
    model = layout.model(remedy, seed, retrained=spec.retrained)
    needed = (model, layout.predictions(remedy, seed), layout.data_dir(seed))
    stage = stage_name(p, remedy, seed)
    if all(path.exists() for path in needed):
        return model, "workspace"
    for how, args in (("DVC cache", ("checkout", "-q")), ("DVC remote", ("pull", "-q"))):
        _dvc(*args, stage, "split")
        if all(path.exists() for path in needed):
            return model, how
    say(
        f"no model of {remedy} seed {seed} in the workspace, DVC cache or remote: training "
        f"that one run with `dvc repro {stage}` (minutes on the full data)",
    )
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", stage], check=False)
    if result.returncode != 0 or not model.exists():
        raise UserError(f"`dvc repro {stage}` failed (its output is above); fix that, then rerun")
    return model, f"trained now (dvc repro {stage})"


def tuned_threshold(p: params.Params, layout: Layout, remedy: str, seed: int) -> float:
    """The evaluate stage's tuned threshold of this run, from its predictions file."""
    kind = "balanced" if p.remedy(remedy).train_set.kind == "balanced" else "imbalanced"
    y_val = load_npz(layout.data_dir(seed) / f"val_{kind}.npz", ("y",))["y"]
    p_val = load_npz(layout.predictions(remedy, seed), ("val",))["val"]
    if y_val.shape[0] != p_val.shape[0]:
        raise UserError(
            f"{layout.predictions(remedy, seed)}: stale (other validation size than "
            f"{layout.data_dir(seed)}); rebuild it with `dvc repro {stage_name(p, remedy, seed)}`"
        )
    value, _ = choose_threshold(y_val, p_val, p.evaluate.threshold_objective)
    return float(value)


def predict(
    p: params.Params, model_path: Path, remedy: str, images: list[np.ndarray]
) -> np.ndarray:
    """Positive-class scores of ``images`` through the saved model, as evaluate scored."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    model = keras.models.load_model(model_path, compile=False, safe_mode=True)
    x = np.stack(images)
    return p.remedy(remedy).predict_positive(model, x, p.train.predict_batch_size)


def parse_args(argv: list[str] | None, p: params.Params) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev.sh predict",
        description="Say whether each image shows the positive class (a car) or the negative "
        "one, through one trained run of the study.",
    )
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    parser.add_argument(
        "--remedy", default=p.predict.remedy, help=f"default {p.predict.remedy} (predict.remedy)"
    )
    parser.add_argument(
        "--seed", type=int, default=p.predict.seed, help=f"default {p.predict.seed}"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="score at or above which an image is the positive class; default: the run's "
        "tuned threshold (metrics/runs/seed<S>/<R>.json tuned_threshold.value)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, layout: Layout | None = None) -> list[Prediction]:
    layout = layout or Layout()
    p = params.load(layout.params)
    args = parse_args(argv, p)
    p.remedy(args.remedy)  # an unknown remedy fails here, with the declared ones listed
    if args.seed not in p.seeds:
        raise UserError(f"--seed {args.seed} is not in params.yaml `seeds` {p.seeds}")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise UserError(f"--threshold {args.threshold} is not in (0, 1); give e.g. 0.5")
    images = [load_image(path) for path in args.images]  # bad images fail before any work
    started = time.perf_counter()
    model_path, source = ensure_run(p, layout, args.remedy, args.seed)
    if args.threshold is None:
        threshold = tuned_threshold(p, layout, args.remedy, args.seed)
        how = f"the run's tuned threshold ({p.evaluate.threshold_objective} on validation)"
    else:
        threshold, how = args.threshold, "--threshold"
    scores = predict(p, model_path, args.remedy, images)
    names = (p.classes.negative, p.classes.positive)
    print(f"model: {model_path} ({source}); threshold {threshold:.4g}: {how}")
    out = []
    for path, score in zip(args.images, scores, strict=True):
        label = names[int(score >= threshold)]
        out.append(Prediction(str(path), float(score), label))
        print(f"{path}: {label} (score {score:.4f}, threshold {threshold:.4g})")
    print(f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return out


if __name__ == "__main__":
    cli.run(main)
