"""Apply a class-pair study's overrides to params.yaml (issue 22: params only).

    python results/pairs/overrides.py NEGATIVE POSITIVE

Keeps the four remedies the pair study reports (baseline, oversample_augment, the new
best strong_ema_budget, the balanced ceiling) with their params.yaml settings, drops the
retrain remedies, and reports the five seeds 0-4; everything else is params.yaml's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ruamel.yaml import YAML

REMEDIES = ("baseline", "oversample_augment", "strong_ema_budget", "balanced")
SEEDS = [0, 1, 2, 3, 4]


def main(negative: str, positive: str, path: Path = Path("params.yaml")) -> None:
    yaml = YAML()
    params = yaml.load(path.read_text())
    params["classes"]["negative"] = negative
    params["classes"]["positive"] = positive
    params["seeds"] = SEEDS
    for name in list(params["remedies"]):
        if name not in REMEDIES:
            del params["remedies"][name]
    params["retrain"] = {}
    with path.open("w") as f:
        yaml.dump(params, f)


if __name__ == "__main__":
    main(*sys.argv[1:3])
