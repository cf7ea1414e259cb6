"""Stage compare: the comparative study over every remedy and seed.

``python -m stages.compare``; see :mod:`imbalance.analysis.compare` for what it writes.
"""

from __future__ import annotations

import sys

from imbalance import params as params_mod
from imbalance.cli import UserError, run
from imbalance.layout import Layout


def main() -> None:
    params = params_mod.load()
    if sys.argv[1:]:
        raise UserError("usage: python -m stages.compare (takes no arguments)")
    from imbalance.analysis.compare import run_compare

    run_compare(params, Layout())


if __name__ == "__main__":
    run(main)
