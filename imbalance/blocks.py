"""The sequential study's seed blocks: ``blocks.yaml`` (``sequential_blocks``), apart
from params.yaml.

A block is more seeds for some remedies (``sequential_blocks.<b>: {seeds, remedies}``),
appended by ``./dev.sh decide`` and never edited once run. The blocks live in their own
params file so that params.py, and so every training's code dependency (the module list
of ``compositions/<remedy>.json``), does not change with them: no module a normal
training run loads imports this one. dvc.yaml reads the file through its top-level
``vars`` (the block stages' ``foreach``) and its block stages declare
``blocks.yaml: [sequential_blocks.<b>]``.

Validation against params.yaml happens here, where the blocks are loaded: block seeds
are new seeds (disjoint from ``seeds``, ``tuning_seeds`` and every other block's), block
remedies are declared, and a retrain remedy's start remedy trains in the same block.
:class:`BlockLayout` puts every per-seed path of a block in the block's own folders
(``<kind>/blocks/<b>/...``), so split, train and evaluate code that takes a
:class:`~imbalance.layout.Layout` runs a block unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imbalance.cli import UserError
from imbalance.layout import Layout, seed_dir
from imbalance.params import Params

BLOCKS_FILE = Path("blocks.yaml")

#: A block's name is part of stage names and paths (``train_block@<b>``,
#: ``models/blocks/<b>``): letters, digits and underscores, not ``seed<n>``.
BLOCK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    """Unknown keys are errors, as in params.py."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Block(_Strict):
    """One batch of the sequential study (``sequential_blocks.<name>``): seeds run for
    some remedies only. Written once by ``./dev.sh decide`` and never edited."""

    seeds: list[int] = Field(min_length=1)
    remedies: list[str] = Field(min_length=1)


class Blocks(_Strict):
    """The whole of blocks.yaml."""

    #: Runs a ``train_block@<b>`` stage trains side by side, each in its own process
    #: (how the stage runs, never what it computes: declared by no stage).
    block_workers: int = Field(default=1, ge=1)
    #: The blocks, in the order they were appended.
    sequential_blocks: dict[str, Block] = {}


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "blocks"


def parse(raw: Any, params: Params, path: Path = BLOCKS_FILE) -> Blocks:
    """Validate an already-loaded blocks mapping against ``params`` (one-line errors)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping (`sequential_blocks: {{}}`) at the top level")
    try:
        blocks = Blocks.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        if first["type"] == "extra_forbidden":
            msg = "unknown key (misspelt?); remove it or fix its name"
        elif first["type"] == "missing":
            msg = first["msg"]
        else:
            msg = f"{first['msg']} (got {first['input']!r})"
            if first["type"] in ("too_short",):
                msg = first["msg"]
        raise UserError(f"{path}: {_where(first['loc'])}: {msg}") from None
    try:
        check(params, blocks)
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None
    return blocks


def load(params: Params, path: Path = BLOCKS_FILE) -> Blocks:
    """Read and validate blocks.yaml against ``params``; no file means no block."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return Blocks()
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse(raw, params, path)


def _start_of(spec: dict[str, Any]) -> str | None:
    """The start remedy a retrain entry names, read from the raw params (``start:
    <name>`` or ``start: {remedy: <name>}``) without importing any component."""
    start = spec.get("start")
    if isinstance(start, dict):
        start = start.get("remedy")
    return start if isinstance(start, str) else None


def check(params: Params, blocks: Blocks) -> None:
    """The blocks against params.yaml; a ValueError names the key and the fix."""
    taken = {s: "seeds" for s in params.seeds} | {s: "tuning_seeds" for s in params.tuning_seeds}
    for name, block in blocks.sequential_blocks.items():
        key = f"sequential_blocks.{name}"
        if not BLOCK_NAME.match(name) or re.fullmatch(r"seed[0-9]+", name):
            raise ValueError(
                f"{key}: a block name is part of stage names and paths; use letters, "
                "digits and underscores, starting with a letter, not seed<n> (e.g. b10)"
            )
        if len(set(block.seeds)) != len(block.seeds) or min(block.seeds) < 0:
            raise ValueError(f"{key}.seeds must be distinct non-negative integers")
        for seed in block.seeds:
            if seed in taken:
                where = taken[seed]
                where = f"params.yaml {where}" if where in ("seeds", "tuning_seeds") else where
                raise ValueError(
                    f"{key}.seeds: seed {seed} is already in {where}; a block adds new "
                    "seeds only, pick seeds no other list holds"
                )
            taken[seed] = key
        if len(set(block.remedies)) != len(block.remedies):
            raise ValueError(f"{key}.remedies names a remedy twice; list each once")
        for remedy in block.remedies:
            if remedy not in params.names:
                raise ValueError(
                    f"{key}.remedies: {remedy!r} is not a declared remedy; declare it in "
                    f"params.yaml under `remedies` or `retrain`, or choose one of "
                    f"{sorted(params.names)}"
                )
            start = _start_of(params.retrain[remedy]) if remedy in params.retrain else None
            if start is not None and start not in block.remedies:
                raise ValueError(
                    f"{key}.remedies: retrain remedy {remedy!r} starts from {start!r}'s "
                    f"model of the same seed; add {start!r} to the block's remedies"
                )


def all_seeds(params: Params, blocks: Blocks) -> list[int]:
    """``seeds``, then every block's seeds in blocks.yaml order (each once)."""
    return [*params.seeds, *(s for b in blocks.sequential_blocks.values() for s in b.seeds)]


def seeds_of(params: Params, blocks: Blocks, remedy: str) -> list[int]:
    """The seeds remedy ``remedy`` runs: ``seeds``, then those of every block naming it."""
    extra = [s for b in blocks.sequential_blocks.values() if remedy in b.remedies for s in b.seeds]
    return [*params.seeds, *extra]


def block(blocks: Blocks, name: str) -> Block:
    """Block ``name`` of ``sequential_blocks``; an unknown name is a clear error."""
    if name not in blocks.sequential_blocks:
        raise UserError(
            f"unknown block {name!r}: {BLOCKS_FILE} `sequential_blocks` holds "
            f"{sorted(blocks.sequential_blocks) or 'none'}"
        )
    return blocks.sequential_blocks[name]


def remedies_of(params: Params, blocks: Blocks, name: str) -> list[str]:
    """Block ``name``'s remedies in declaration order (scratch ones first)."""
    spec = block(blocks, name)
    return [r for r in params.names if r in spec.remedies]


def block_composition(layout: Layout, name: str) -> Path:
    """The code and remedy params a block's training runs (``resolve_block@<b>``):
    ``train_block@<b>``'s code dependency."""
    return layout.root / "compositions" / "blocks" / f"{name}.json"


@dataclass(frozen=True)
class BlockLayout(Layout):
    """The project's map for block ``block``: its data, models, predictions, curves and
    run metrics each under ``<kind>/blocks/<block>``; everything else (params, raw data,
    compositions, compare's outputs) is the project's.

    The run metrics sit inside ``metrics/runs`` (``metrics/runs/blocks/<b>``), so that
    compare's dependency ``metrics/runs`` covers them and exists in a study without
    blocks (DVC refuses to run a stage whose dependency is missing)."""

    block: str = ""

    def __post_init__(self) -> None:
        if not self.block:
            raise ValueError("BlockLayout needs a block name")

    def block_dir(self, kind: str) -> Path:
        """``<root>/<kind>/blocks/<block>``: the folder a block stage writes (dvc.yaml
        ``outs``) for ``kind`` in data, models, predictions, training, metrics/runs,
        plots/runs."""
        return self.root / kind / "blocks" / self.block

    @property
    def cifar2_dir(self) -> Path:
        return self.block_dir("data")

    @property
    def models_dir(self) -> Path:
        return self.block_dir("models")

    def predictions_dir(self, seed: int) -> Path:
        return self.block_dir("predictions") / seed_dir(seed)

    def training_dir(self, name: str, seed: int) -> Path:
        return self.block_dir("training") / name / seed_dir(seed)

    def run_metrics_dir(self, seed: int) -> Path:
        return self.block_dir("metrics/runs") / seed_dir(seed)

    def run_plots_dir(self, seed: int) -> Path:
        return self.block_dir("plots/runs") / seed_dir(seed)


def in_block(layout: Layout, name: str) -> BlockLayout:
    """``layout``'s project, seen from block ``name``."""
    return BlockLayout(layout.root, layout.data_root, block=name)
