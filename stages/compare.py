"""Stage compare: the comparative study over every remedy and seed.

``python -m stages.compare``; see :mod:`imbalance.compare` for what it writes.
"""

from __future__ import annotations

import sys

from imbalance import params as params_mod
from imbalance import warm
from imbalance.cli import UserError, run


def main(*, warm_start: bool = False) -> None:
    params = params_mod.load()
    if sys.argv[1:]:
        raise UserError("usage: python -m stages.compare (takes no arguments)")
    if warm_start:
        warm.delegate("stages.compare", params.runtime.warm_idle_s, "numpy")
    from imbalance.compare import run_compare

    run_compare(params)


if __name__ == "__main__":
    run(lambda: main(warm_start=True))
