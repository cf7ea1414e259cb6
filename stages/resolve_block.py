"""Stage ``resolve_block@<block>``: the code and remedy params a seed block's training runs
-> compositions/blocks/<block>.json.

    python -m stages.resolve_block <block>

As ``resolve@<remedy>`` (:mod:`imbalance.training.resolve`) for a block: every project
module the block's training loads (``python -m stages.train_block``: the loop and its
remedies' components) and its remedies' params as params.yaml holds them.
``train_block@<block>`` depends on this file, not on the whole ``remedies`` / ``retrain``
sections: adding or editing another remedy, or code none of the block's remedies loads,
rewrites the same bytes and re-trains nothing (DVC cannot list the keys of a list of
remedies in ``params``). The block code lives here and in the other ``stages/*_block.py``
and :mod:`imbalance.blocks`, none of which a normal training run loads.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

from imbalance import blocks as blocks_mod
from imbalance import params
from imbalance.blocks import Blocks
from imbalance.cli import UserError, run
from imbalance.files import write_json
from imbalance.layout import Layout
from imbalance.params import Params

USAGE = "usage: python -m stages.resolve_block <block>"

#: What ``python -m stages.train_block`` imports before it trains.
BLOCK_ENTRY = ("stages.train_block", "imbalance.training.train")


def code_digest(p: Params, names: list[str]) -> dict[str, str]:
    """SHA-256 of every project module a block's training of remedies ``names`` loads."""
    from imbalance.training import resolve

    for module in BLOCK_ENTRY:
        importlib.import_module(module)
    for name in names:
        p.remedy(name)  # validates; imports the modules of the kinds it uses
    loaded = sorted({resolve.module_file(m) for m in resolve.loaded_modules()} - {THIS})
    return {f: hashlib.sha256((resolve.CODE_ROOT / f).read_bytes()).hexdigest() for f in loaded}


#: This file: loaded here (as a module when a test imports it), never by the training.
THIS = "stages/resolve_block.py"


def resolve_block(p: Params, blocks: Blocks, block: str, layout: Layout) -> Path:
    """Write ``compositions/blocks/<block>.json``."""
    names = blocks_mod.remedies_of(p, blocks, block)
    digest = code_digest(p, names)
    declared = {**p.remedies, **p.retrain}
    out = blocks_mod.block_composition(layout, block)
    write_json(out, {"block": block, "code": digest, "remedies": {n: declared[n] for n in names}})
    return out


def main() -> None:
    p = params.load()
    b = blocks_mod.load(p)
    args = sys.argv[1:]
    if len(args) != 1:
        raise UserError(f"expected one block name; {USAGE}")
    blocks_mod.block(b, args[0])
    print(resolve_block(p, b, args[0], Layout()))


if __name__ == "__main__":
    run(main)
