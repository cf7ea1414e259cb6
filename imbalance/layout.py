"""The one map of the project's files: every path a stage, test or benchmark reads or writes.

dvc.yaml names the same paths (DVC needs them literally, with ``${item.seed}`` templating);
this object is where the code gets them, so ``seed<s>`` is spelt once. Stages use the
project root; tests point ``root`` at a temporary project, and the benchmark's plain-Keras
reference reads the project's data (``data_root``) but writes elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    #: A block of the sequential study (``sequential_blocks.<b>``): every per-seed path
    #: then lies in the block's own folders (``<kind>/blocks/<b>/...``), so the block's
    #: stages have their own outputs; see :meth:`in_block`.
    block: str | None = None

    def in_block(self, block: str) -> Layout:
        """The same project's map for block ``block``: its data, models, predictions,
        curves and run metrics, each under ``<kind>/blocks/<block>``. The training loop,
        split and evaluate take it as they take the project's own."""
        return replace(self, block=block)

    def _blocked(self, path: Path) -> Path:
        return path if self.block is None else path / "blocks" / self.block

    def block_dir(self, kind: str, block: str) -> Path:
        """``<root>/<kind>/blocks/<block>``: the folder a block stage writes (dvc.yaml
        ``outs``) for ``kind`` in data, models, predictions, training, metrics/runs,
        plots/runs. The run metrics sit inside ``metrics/runs`` (not ``metrics/blocks``)
        so that compare's dependency ``metrics/runs`` covers them and exists in a study
        without blocks (DVC refuses to run a stage whose dependency is missing)."""
        return self.root / kind / "blocks" / block

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

    def block_composition(self, block: str) -> Path:
        """The code and remedy params a seed block's training runs (``resolve_block@<b>``):
        ``train_block@<b>``'s code dependency."""
        return self.root / "compositions" / "blocks" / f"{block}.json"

    # ---------------------------------------------------------------- split
    @property
    def cifar2_dir(self) -> Path:
        if self.block is not None:
            return self.block_dir("data", self.block)
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
        return self._blocked(self.root / "models")

    def model(self, name: str, seed: int, *, retrained: bool = False) -> Path:
        group = "retrained" if retrained else "scratch"
        return self.models_dir / group / seed_dir(seed) / f"{name}.keras"

    def predictions_dir(self, seed: int) -> Path:
        return self._blocked(self.root / "predictions") / seed_dir(seed)

    def predictions(self, name: str, seed: int) -> Path:
        return self.predictions_dir(seed) / f"{name}.npz"

    def training_dir(self, name: str, seed: int) -> Path:
        """The run's dvclive directory (curves per validation check)."""
        return self._blocked(self.root / "training") / name / seed_dir(seed)

    # ---------------------------------------------------------------- evaluate
    def run_metrics_dir(self, seed: int) -> Path:
        if self.block is not None:
            return self.block_dir("metrics/runs", self.block) / seed_dir(seed)
        return self.root / "metrics" / "runs" / seed_dir(seed)

    def run_metrics(self, name: str, seed: int) -> Path:
        return self.run_metrics_dir(seed) / f"{name}.json"

    def run_plots_dir(self, seed: int) -> Path:
        if self.block is not None:
            return self.block_dir("plots/runs", self.block) / seed_dir(seed)
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
