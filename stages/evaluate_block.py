"""Stage ``evaluate_block@<block>``: metrics and plot data of a block's runs.

``python -m stages.evaluate_block <block>``; see
:func:`imbalance.analysis.evaluate.evaluate_seed` (the block's remedies, its seeds).
"""

from __future__ import annotations

import sys

from imbalance import blocks, params
from imbalance.cli import UserError, run
from imbalance.layout import Layout


def main() -> None:
    p = params.load()
    b = blocks.load(p)
    if len(sys.argv[1:]) != 1:
        raise UserError("usage: python -m stages.evaluate_block <block>")
    name = sys.argv[1]
    spec = blocks.block(b, name)
    from imbalance.analysis.evaluate import evaluate_seed

    layout = blocks.in_block(Layout(), name)
    remedies = blocks.remedies_of(p, b, name)
    for seed in spec.seeds:
        evaluate_seed(p, seed, layout, remedies)


if __name__ == "__main__":
    run(main)
