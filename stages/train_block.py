"""Stage ``train_block@<block>``: every remedy x seed of a sequential-study block.

    python -m stages.train_block <block>

Each run is :func:`imbalance.training.train.run`, the loop of ``train@<remedy>-<seed>``,
with a :class:`~imbalance.blocks.BlockLayout` (the block's own folders). The block code
lives in this file and :mod:`imbalance.blocks`, which a normal training run
(``python -m stages.train``) never loads: the code dependency of every
``train@<remedy>-<seed>`` (``compositions/<remedy>.json``) is the same with or without
blocks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imbalance import blocks as blocks_mod
from imbalance import cli, params
from imbalance.blocks import Blocks
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params

USAGE = "usage: python -m stages.train_block <block>"


def run_block(p: Params, blocks: Blocks, block: str, layout: Layout | None = None) -> None:
    """Every remedy x seed of block ``block``.

    Every run is its own fresh process (a ``spawn`` child used for one run only), so its
    bytes do not depend on which runs came before it in the stage or on how many run
    side by side: blocks.yaml ``block_workers`` at a time (how the stage runs, declared
    by no stage). Scratch remedies all finish before retrain ones start (a retrain run
    starts from its start remedy's model of the same seed, which imbalance/blocks.py
    requires in the block). The first failure stops the stage with its message.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spec = blocks_mod.block(blocks, block)
    root = (layout or Layout()).root
    names = blocks_mod.remedies_of(p, blocks, block)  # scratch ones first
    phases = [[n for n in names if n in p.remedies], [n for n in names if n in p.retrain]]
    with ProcessPoolExecutor(
        max_workers=blocks.block_workers,
        mp_context=multiprocessing.get_context("spawn"),
        max_tasks_per_child=1,
    ) as pool:
        for phase in phases:
            jobs = [pool.submit(_block_run, root, block, n, s) for n in phase for s in spec.seeds]
            for job in jobs:
                job.result()  # re-raises a run's UserError in the stage


def _block_run(root: Path, block: str, name: str, seed: int) -> None:
    """One run of a block, in its own process: params read again, then the loop."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from imbalance.training import train

    p = params.load(root / params.PARAMS_FILE)
    train.run(p, name, seed, blocks_mod.in_block(Layout(root), block))


def main(argv: list[str] | None = None) -> None:
    p = params.load()
    b = blocks_mod.load(p)
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise UserError(f"expected a block name; {USAGE}")
    blocks_mod.block(b, args[0])  # unknown names fail here, before TensorFlow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as stages.train
    run_block(p, b, args[0])


if __name__ == "__main__":
    cli.run(main, fast_exit=True)
