"""DVC stage `fetch`: CIFAR-10 from `data.source` into data/raw (imbalance/data/fetch.py)."""

from __future__ import annotations

from imbalance import params
from imbalance.cli import run
from imbalance.data import fetch
from imbalance.layout import Layout


def main() -> None:
    p = params.load()
    print(fetch.run_fetch(p, Layout()))


if __name__ == "__main__":
    run(main)
