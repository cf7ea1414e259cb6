"""The one map of the project's files: every path a stage, test or benchmark reads or writes.

dvc.yaml names the same paths (DVC needs them literally, with ``${item.seed}`` templating);
this object is where the code gets them, so ``seed<s>`` is spelt once. Stages use the
project root; tests point ``root`` at a temporary project, and the benchmark's plain-Keras
reference reads the project's data (``data_root``) but writes elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: File names inside ``raw_dir`` (fetch writes them into a temporary directory first).
RAW_NPZ = "cifar10.npz"
MANIFEST = "manifest.json"


def seed_dir(seed: int) -> str:
    """The per-seed folder name used under every per-seed output."""
    return f"seed{seed}"


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")
    #: Where the CIFAR-2 split lives; default ``<root>/data/cifar2``.
    data_root: Path | None = None

    # ---------------------------------------------------------------- inputs
    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    # ---------------------------------------------------------------- fetch
    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def raw_npz(self) -> Path:
        return self.raw_dir / RAW_NPZ

    @property
    def manifest(self) -> Path:
        return self.raw_dir / MANIFEST

    # ---------------------------------------------------------------- resolve
    def composition(self, remedy: str) -> Path:
        """The code a remedy's training runs (``resolve@<remedy>``): a training stage's
        code dependency (dvc.yaml)."""
        return self.root / "compositions" / f"{remedy}.json"

    # ---------------------------------------------------------------- split
    @property
    def cifar2_dir(self) -> Path:
        return self.data_root if self.data_root is not None else self.root / "data" / "cifar2"

    def data_dir(self, seed: int) -> Path:
        return self.cifar2_dir / seed_dir(seed)

    @property
    def class_counts(self) -> Path:
        return self.root / "metrics" / "class_counts.json"

    @property
    def class_distribution_plot(self) -> Path:
        return self.root / "plots" / "class_distribution.json"

    @property
    def class_distribution_figure(self) -> Path:
        return self.root / "figures" / "class_distribution.png"

    # ---------------------------------------------------------------- train / retrain
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model(self, name: str, seed: int, *, retrained: bool = False) -> Path:
        group = "retrained" if retrained else "scratch"
        return self.models_dir / group / seed_dir(seed) / f"{name}.keras"

    def predictions_dir(self, seed: int) -> Path:
        return self.root / "predictions" / seed_dir(seed)

    def predictions(self, name: str, seed: int) -> Path:
        return self.predictions_dir(seed) / f"{name}.npz"

    def training_dir(self, name: str, seed: int) -> Path:
        """The run's dvclive directory (curves per validation check)."""
        return self.root / "training" / name / seed_dir(seed)

    # ---------------------------------------------------------------- evaluate
    def run_metrics_dir(self, seed: int) -> Path:
        return self.root / "metrics" / "runs" / seed_dir(seed)

    def run_metrics(self, name: str, seed: int) -> Path:
        return self.run_metrics_dir(seed) / f"{name}.json"

    def run_plots_dir(self, seed: int) -> Path:
        return self.root / "plots" / "runs" / seed_dir(seed)

    # ---------------------------------------------------------------- compare
    @property
    def remedy_metrics_dir(self) -> Path:
        """One small file per remedy: the rows of ``dvc metrics show``."""
        return self.root / "metrics" / "remedies"

    @property
    def statistics(self) -> Path:
        return self.root / "metrics" / "statistics.json"

    @property
    def comparison_md(self) -> Path:
        return self.root / "metrics" / "comparison.md"

    @property
    def comparison_figures(self) -> Path:
        return self.root / "figures" / "comparison"

    @property
    def comparison_plots(self) -> Path:
        return self.root / "plots" / "comparison"

    # ---------------------------------------------------------------- tools
    @property
    def readme(self) -> Path:
        return self.root / "README.md"
