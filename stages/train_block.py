"""Stage ``train_block@<block>``: every remedy x seed of a sequential-study block.

    python -m stages.train_block <block>

Thin on purpose: params, the block name, then the library
(:func:`imbalance.training.train.run_block`, the same loop as ``stages.train``).
"""

from __future__ import annotations

import os
import sys

from imbalance import cli, params
from imbalance.cli import UserError

USAGE = "usage: python -m stages.train_block <block>"


def main(argv: list[str] | None = None) -> None:
    p = params.load()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise UserError(f"expected a block name; {USAGE}")
    p.block(args[0])  # unknown names fail here, before TensorFlow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # as stages.train
    from imbalance.training import train

    train.run_block(p, args[0])


if __name__ == "__main__":
    cli.run(main, fast_exit=True)
