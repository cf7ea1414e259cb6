"""DVC stage `split`: data/raw -> data/cifar2 + class counts (see imbalance/data/split.py)."""

from __future__ import annotations

from imbalance import params
from imbalance.cli import run
from imbalance.data import split


def main() -> None:
    p = params.load()
    raw = split.load_raw()
    counts = split.write_cifar2(split.CIFAR2_DIR, raw, p.classes, p.split, p.seeds)
    split.write_reports(counts, p.split.validation)
    print(split.summary(counts, p.seeds))


if __name__ == "__main__":
    run(main)
