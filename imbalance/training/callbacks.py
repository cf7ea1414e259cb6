"""The metrics and callbacks ``fit`` runs with: what the training loop logs and reports.

Each is a small Keras subclass or lambda with one job: the validation metrics early
stopping watches, the dvclive curves, one progress line per check, and the benchmark's
throughput marks. ``fit``'s epoch is a validation check of ``train.check_every``
optimizer steps (the same for every remedy), so curves and lines are labelled by the
optimizer step at the check, which means the same amount of training for every remedy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras


def make_metrics() -> list[keras.metrics.Metric]:
    """Accuracy and threshold-free metrics of the positive class (logged as val_auc, ...).

    ``AUC(multi_label=True, label_weights=[0, 1])`` computes the AUC of each softmax
    column and keeps only the positive column's: the ROC AUC of "automobile" — a plain
    ``AUC()`` would pool both columns into one curve.
    """
    import keras
    import tensorflow as tf

    class AUC(keras.metrics.AUC):
        """Keras reads every metric's result eagerly at the end of each check and
        validation pass; the AUC's ~30 eager ops cost ~3 ms each time, which dominated
        undersampling's 2-step epochs when they were the checks. Compiled, the same ops
        run as one graph."""

        @tf.function
        def result(self) -> tf.Tensor:
            return super().result()

    positive = {"multi_label": True, "num_labels": 2, "label_weights": [0.0, 1.0]}
    return [
        keras.metrics.CategoricalAccuracy(name="accuracy"),
        AUC(curve="ROC", name="auc", **positive),
        AUC(curve="PR", name="pr_auc", **positive),
    ]


def live_callback(live: Any, check_every: int) -> keras.callbacks.Callback:
    """dvclive's Keras callback, keeping Keras' metric names and leaving git alone.

    ARCHITECTURE.md names the curves ``loss``, ``val_auc``, ... (``plots/metrics/*.tsv``);
    the stock callback would rename them ``train/loss``, ``eval/auc``. Each check's row
    has the optimizer step as its ``step`` (``Live.step`` set before logging, instead of
    ``next_step``'s +1 per check), so curves of remedies line up on one x axis.
    ``Live.end()`` would, under ``dvc exp run``, ``git add`` the live directory — here a
    temporary directory that is renamed into place afterwards — so the summary is
    written instead.
    """
    from dvclive.keras import DVCLiveCallback

    class Callback(DVCLiveCallback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.live.step = (epoch + 1) * check_every
            for metric, value in (logs or {}).items():
                self.live.log_metric(metric, float(value))
            self.live.sync()

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.live.make_summary()

    return Callback(live=live)


def throughput_callback(
    images_seen: Callable[[int], int], check_every: int
) -> keras.callbacks.Callback:
    """Training throughput for the benchmark (``IMBALANCE_PROFILE``, see runtime/profile.py).

    Marks ``first_step`` when the first batch starts (imports, data loading and graph
    building are behind it) and, at the end, ``train_throughput``: images per second of
    the training phase of every check but the first (which includes tracing), validation
    excluded — comparable with the plain-``fit`` limit — and, as ``check_images_per_s``,
    the same with each check's validation pass included. ``images_seen(steps)`` is the
    sampler's exact count of images fed in the first ``steps`` steps (the natural
    sampler's short last batch of a pass included). No-ops without the variable.
    """
    import keras

    from imbalance.runtime import profile

    class Throughput(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.train_s: list[float] = []
            self.check_s: list[float] = []
            self.begin = 0.0
            self.val: float | None = None

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if not self.check_s and batch == 0:
                profile.mark("first_step")

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.begin, self.val = time.perf_counter(), None

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.val = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            now = time.perf_counter()
            self.train_s.append((self.val or now) - self.begin)
            self.check_s.append(now - self.begin)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            if len(self.train_s) < 2:
                return
            checks = len(self.train_s)
            n = images_seen(checks * check_every) - images_seen(check_every)
            profile.mark(
                "train_throughput",
                images_per_s=round(n / sum(self.train_s[1:]), 1),
                check_images_per_s=round(n / sum(self.check_s[1:]), 1),
                checks=checks,
                steps=checks * check_every,
            )

    return Throughput()


def progress_callback(
    max_steps: int, check_every: int, out: Any = None
) -> keras.callbacks.Callback:
    """Exactly one line per check on stdout, flushed, so a long stage visibly moves:
    ``step 300/6000  loss ...  val_auc ...  12.3s``."""
    import keras

    out = out or sys.stdout
    start = time.perf_counter()

    def line(epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        step = (epoch + 1) * check_every
        print(
            f"step {step}/{max_steps}  loss {logs.get('loss', float('nan')):.4f}  "
            f"val_auc {logs.get('val_auc', float('nan')):.4f}  "
            f"{time.perf_counter() - start:.1f}s",
            file=out,
            flush=True,
        )

    return keras.callbacks.LambdaCallback(on_epoch_end=line)
