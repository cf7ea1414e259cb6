"""DVC stage `split`: data/raw -> data/cifar2 + class counts (see imbalance/data/split.py)."""

from __future__ import annotations

from imbalance import params
from imbalance.cli import run
from imbalance.data import split
from imbalance.layout import Layout


def main() -> None:
    p = params.load()
    print(split.run_split(p, Layout()))


if __name__ == "__main__":
    run(main)
