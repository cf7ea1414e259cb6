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


def run(params: Params, name: str, layout: Layout) -> Path:
    """Write ``compositions/<name>.json``: every code file the remedy's training loads."""
    for module in ENTRY:
        importlib.import_module(module)
    params.remedy(name)  # validates; imports the modules of the kinds it uses
    files = sorted({module_file(m) for m in loaded_modules()})
    digest = {f: hashlib.sha256((CODE_ROOT / f).read_bytes()).hexdigest() for f in files}
    out = layout.composition(name)
    write_json(out, {"remedy": name, "code": digest})
    return out
