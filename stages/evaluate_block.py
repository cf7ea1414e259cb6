"""Stage ``evaluate_block@<block>``: metrics and plot data of a block's runs.

``python -m stages.evaluate_block <block>``; see
:func:`imbalance.analysis.evaluate.evaluate_block`.
"""

from __future__ import annotations

import sys

from imbalance import params as params_mod
from imbalance.cli import UserError, run
from imbalance.layout import Layout


def main() -> None:
    params = params_mod.load()
    if len(sys.argv[1:]) != 1:
        raise UserError("usage: python -m stages.evaluate_block <block>")
    params.block(sys.argv[1])
    from imbalance.analysis.evaluate import evaluate_block

    evaluate_block(params, sys.argv[1], Layout())


if __name__ == "__main__":
    run(main)
