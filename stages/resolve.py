"""Stage ``resolve``: the code and params every other stage reads -> compositions/.

    python -m stages.resolve             write compositions/
    python -m stages.resolve --dry-run   print what it would write (JSON), write nothing

See :mod:`imbalance.resolution`: the other stages depend on their file there instead of
on code files and params, so a no-op ``dvc repro`` checks one stage's code and params,
and an edit re-runs only the stages whose file it changes.
"""

from __future__ import annotations

import json
import sys

from imbalance import params
from imbalance.cli import UserError, run

USAGE = "usage: python -m stages.resolve [--dry-run]"


def main() -> None:
    args = sys.argv[1:]
    if args not in ([], ["--dry-run"]):
        raise UserError(f"unexpected arguments {' '.join(args)}; {USAGE}")
    from imbalance import resolution

    p = params.load()
    if args:
        print(json.dumps(resolution.expected(p), sort_keys=True))
    else:
        print(f"{resolution.OUT}/: {resolution.write(p)} files")


if __name__ == "__main__":
    run(main)
