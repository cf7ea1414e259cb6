"""Stage ``split_block@<block>``: data/raw -> data/blocks/<block> (the block's seeds).

    python -m stages.split_block <block>

The same files as the split stage (:func:`imbalance.data.split.write_cifar2`, the same
function of each seed) for the block's seeds, into its
:class:`~imbalance.blocks.BlockLayout`; no reports (the class counts are the first
seed's, written by ``split``) and no copy of a first seed at the top.
"""

from __future__ import annotations

import sys

from imbalance import blocks, params
from imbalance.cli import UserError, run
from imbalance.data import split
from imbalance.layout import Layout


def main() -> None:
    p = params.load()
    b = blocks.load(p)
    if len(sys.argv[1:]) != 1:
        raise UserError("usage: python -m stages.split_block <block>")
    name = sys.argv[1]
    seeds = blocks.block(b, name).seeds
    layout = blocks.in_block(Layout(), name)
    raw = split.load_raw(layout)
    counts = split.write_cifar2(layout, raw, p.classes, p.split, seeds)
    for top in layout.cifar2_dir.glob("*.npz"):  # the first seed's copy: the split's only
        top.unlink()
    print(split.summary(layout, counts, seeds))


if __name__ == "__main__":
    run(main)
