"""Stage ``resolve@<remedy>``: the code a remedy's training runs and the params it reads
-> compositions/<remedy>.json.

    python -m stages.resolve <remedy>

See :mod:`imbalance.training.resolve`: the training stages depend on this file instead of
on the whole component package, so an edit re-trains only the remedies that use it, and
instead of declaring params (the resolve stage declares them, dvc.yaml).
"""

from __future__ import annotations

import sys

from imbalance import params
from imbalance.cli import UserError, run
from imbalance.layout import Layout

USAGE = "usage: python -m stages.resolve <remedy>"


def main() -> None:
    p = params.load()
    args = sys.argv[1:]
    if len(args) != 1:
        raise UserError(f"expected one remedy name; {USAGE}")
    from imbalance.training import resolve

    print(resolve.run(p, args[0], Layout()))


if __name__ == "__main__":
    run(main)
