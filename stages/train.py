"""Stage ``train@<remedy>-<seed>`` / ``retrain@<remedy>-<seed>``: train one remedy for one seed.

    python -m stages.train <remedy> <seed>

Thin on purpose: params, arguments, then the library (:func:`imbalance.training.train.run`). The
only stage that imports TensorFlow, and only after the arguments and inputs are checked.
"""

from __future__ import annotations

import os
import sys

from imbalance import cli, params
from imbalance.cli import UserError
from imbalance.runtime import warm

USAGE = "usage: python -m stages.train <remedy> <seed>"


def main(argv: list[str] | None = None, *, warm_start: bool = False) -> None:
    """``warm_start``: as the stage process, hand the run to a warm child
    (:mod:`imbalance.runtime.warm`) when one is available; a caller in-process never does."""
    p = params.load()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise UserError(f"expected a remedy name and a seed; {USAGE}")
    name, seed_arg = args
    p.remedy(name)  # unknown names fail here, with the declared ones listed
    try:
        seed = int(seed_arg)
    except ValueError:
        raise UserError(f"seed {seed_arg!r} is not an integer; {USAGE}") from None
    if seed not in p.seeds:
        raise UserError(f"seed {seed} is not in params.yaml `seeds` {p.seeds}; pick one of them")
    # TensorFlow's C++ log would drown the one-line-per-check progress: its start-up
    # chatter and the ERROR-level notes of a first op (oneDNN falling back to Eigen, an
    # unknown NodeDef attribute); a real failure raises in Python. Set before warm.delegate,
    # so that a warm server (its key includes TF_* variables) imports TensorFlow with it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if warm_start:
        warm.delegate(
            "stages.train",
            p.runtime.warm_idle_s,
            preload=("imbalance.training.model", "imbalance.training.train"),
        )
    from imbalance.training import train

    train.run(p, name, seed)


if __name__ == "__main__":
    cli.run(lambda: main(warm_start=True), fast_exit=True)
