"""DVC stage `fetch`: CIFAR-10 from `data.source` into data/raw (imbalance/data/fetch.py)."""

from __future__ import annotations

from imbalance import params
from imbalance.cli import run
from imbalance.data import fetch


def main() -> None:
    p = params.load()
    fetched = fetch.fetch(p.data.source, p.data.sha256, p.data.max_extract_bytes)
    manifest = fetch.write_raw(fetch.RAW_DIR, fetched, p.data.source)
    print(fetch.summary(manifest))


if __name__ == "__main__":
    run(main)
