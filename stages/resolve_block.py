"""Stage ``resolve_block@<block>``: the code and remedy params a seed block's training runs
-> compositions/blocks/<block>.json.

    python -m stages.resolve_block <block>

See :func:`imbalance.training.resolve.run_block`.
"""

from __future__ import annotations

import sys

from imbalance import params
from imbalance.cli import UserError, run
from imbalance.layout import Layout

USAGE = "usage: python -m stages.resolve_block <block>"


def main() -> None:
    p = params.load()
    args = sys.argv[1:]
    if len(args) != 1:
        raise UserError(f"expected one block name; {USAGE}")
    p.block(args[0])
    from imbalance.training import resolve

    print(resolve.run_block(p, args[0], Layout()))


if __name__ == "__main__":
    run(main)
