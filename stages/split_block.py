"""Stage ``split_block@<block>``: data/raw -> data/blocks/<block> (the block's seeds).

``python -m stages.split_block <block>``; see :func:`imbalance.data.split.run_split_block`.
"""

from __future__ import annotations

import sys

from imbalance import params
from imbalance.cli import UserError, run
from imbalance.data import split
from imbalance.layout import Layout


def main() -> None:
    p = params.load()
    if len(sys.argv[1:]) != 1:
        raise UserError("usage: python -m stages.split_block <block>")
    print(split.run_split_block(p, Layout(), sys.argv[1]))


if __name__ == "__main__":
    run(main)
