"""Stage evaluate@<seed>: metrics and plot data of every remedy trained with that seed.

``python -m stages.evaluate <seed>``; see :mod:`imbalance.analysis.evaluate` for what it writes.
"""

from __future__ import annotations

import sys

from imbalance import params as params_mod
from imbalance.cli import UserError, run
from imbalance.layout import Layout


def main() -> None:
    params = params_mod.load()
    args = sys.argv[1:]
    if len(args) != 1 or not args[0].isdigit():
        raise UserError("usage: python -m stages.evaluate <seed>")
    seed = int(args[0])
    if seed not in params.seeds:
        raise UserError(f"seed {seed} is not in params.yaml `seeds` {params.seeds}")
    from imbalance.analysis.evaluate import evaluate_seed

    evaluate_seed(params, seed, Layout())


if __name__ == "__main__":
    run(main)
