"""The code one remedy's training runs, as a file a training stage can depend on.

DVC interpolates only scalars into ``deps``, so a training stage cannot list the component
modules of its own remedy. ``resolve@<remedy>`` (no TensorFlow, a fraction of a second)
validates the remedy, which imports exactly the modules of the component kinds it uses
(:mod:`imbalance.training.components`), imports the training loop the way
``python -m stages.train`` does, and writes the SHA-256 of every project module then
loaded, except the inert :mod:`imbalance.runtime` (how a stage starts, never what it
computes). ``train@<remedy>-<seed>`` depends on that file instead of on the code: an edit
of a module the remedy does not use leaves the file's bytes, and so the training, as
they are; an edit of one it does use changes the file and re-runs it. The file is small
and git-tracked, and ``dvc exp run -S remedies.<r>...`` re-resolves the remedy with its
new composition before training it. tests/test_pipeline.py checks the list against the
modules a real training run loads.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

from imbalance.files import write_json
from imbalance.layout import Layout
from imbalance.params import Params

#: What ``python -m stages.train`` imports before it trains (the loop and its entry point).
ENTRY = ("stages.train", "imbalance.training.train")
#: The same for a seed block's ``python -m stages.train_block``.
BLOCK_ENTRY = ("stages.train_block", "imbalance.training.train")
#: Where the code is (the project root under DVC; tests may run a project elsewhere).
CODE_ROOT = Path(__file__).resolve().parents[2]
#: Never what a stage computes (tests/test_inert.py proves each module of it inert).
INERT = "imbalance.runtime"


def module_file(module: str) -> str:
    """``imbalance.training.train`` -> ``imbalance/training/train.py`` (package: __init__)."""
    spec = sys.modules[module].__spec__
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin).resolve().relative_to(CODE_ROOT).as_posix()


def loaded_modules() -> list[str]:
    """Project modules in this process, the inert ones (and this one) left out."""
    return sorted(
        m
        for m in list(sys.modules)
        if (m.split(".")[0] in ("imbalance", "stages"))
        and not (m in (INERT, __name__) or m.startswith(f"{INERT}."))
        and getattr(sys.modules[m], "__file__", None)
    )


def code_digest(params: Params, entry: tuple[str, ...], names: list[str]) -> dict[str, str]:
    """SHA-256 of every project module loaded by ``entry`` and remedies ``names``."""
    for module in entry:
        importlib.import_module(module)
    for name in names:
        params.remedy(name)  # validates; imports the modules of the kinds it uses
    files = sorted({module_file(m) for m in loaded_modules()})
    return {f: hashlib.sha256((CODE_ROOT / f).read_bytes()).hexdigest() for f in files}


def run(params: Params, name: str, layout: Layout) -> Path:
    """Write ``compositions/<name>.json``: every code file the remedy's training loads."""
    digest = code_digest(params, ENTRY, [name])
    out = layout.composition(name)
    write_json(out, {"remedy": name, "code": digest})
    return out


def run_block(params: Params, block: str, layout: Layout) -> Path:
    """Write ``compositions/blocks/<block>.json`` (stage ``resolve_block@<block>``): every
    code file the block's training loads (its remedies' kinds, the loop) and its remedies'
    params as params.yaml holds them. ``train_block@<block>`` depends on this file, not
    on the whole ``remedies`` / ``retrain`` sections: adding or editing another remedy,
    or code none of the block's remedies loads, rewrites the same bytes and re-trains
    nothing (DVC cannot list the keys of a list of remedies in ``params``)."""
    spec = params.block(block)
    names = [n for n in params.names if n in spec.remedies]
    digest = code_digest(params, BLOCK_ENTRY, names)
    declared = {**params.remedies, **params.retrain}
    out = layout.block_composition(block)
    write_json(out, {"block": block, "code": digest, "remedies": {n: declared[n] for n in names}})
    return out
