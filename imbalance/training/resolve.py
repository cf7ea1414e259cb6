"""The code one remedy's training runs, as a file a training stage can depend on.

DVC interpolates only scalars into ``deps``, so a training stage cannot list the component
modules of its own remedy. The ``resolve`` stage (:mod:`imbalance.resolution`; no
TensorFlow) validates each remedy in a process of its own, which imports exactly the
modules of the component kinds it uses (:mod:`imbalance.training.components`), imports
the training loop the way ``python -m stages.train`` does, and writes the SHA-256 of every
project module then loaded, except the inert :mod:`imbalance.runtime` (how a stage
starts, never what it computes). ``train@<remedy>-<seed>`` depends on that file
(``compositions/<remedy>.json``) instead of on the code: an edit of a module the remedy
does not use leaves the file's bytes, and so the training, as they are; an edit of one it
does use changes the file and re-runs it. tests/test_pipeline.py checks the list against
the modules a real training run loads.

The file also carries the values of the params a training run reads (the remedy's own
entry and :data:`TRAINING_PARAMS`), which the resolve stage declares in dvc.yaml in place
of the training stages: DVC parses params.yaml once for every stage that declares params
(docs/performance.md). A change of any value rewrites the file and re-runs the remedy's
trainings.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from typing import Any

#: What ``python -m stages.train`` imports before it trains (the loop and its entry point).
ENTRY = ("stages.train", "imbalance.training.train")
#: Where the code is (the project root under DVC; tests may run a project elsewhere).
CODE_ROOT = Path(__file__).resolve().parents[2]
#: Never what a stage computes (tests/test_inert.py proves each module of it inert).
INERT = "imbalance.runtime"
#: The resolving code itself: loaded while resolving, never by a training.
RESOLVERS = (__name__, "imbalance.resolution")

#: Every params.yaml key a training reads besides its remedy's entry: every train.* key
#: that can change a number (not predict_batch_size: inference batching; no runtime.*:
#: how a stage starts), the model, and the validation protocol (kfold cross-validates).
TRAINING_PARAMS = (
    "model",
    "split.folds",
    "split.validation",
    "train.batch_size",
    "train.check_every",
    "train.early_stopping",
    "train.learning_rate",
    "train.max_steps",
    "train.optimizer",
    "train.stopping",
    "train.threads",
)


def module_file(module: str) -> str:
    """``imbalance.training.train`` -> ``imbalance/training/train.py`` (package: __init__)."""
    spec = sys.modules[module].__spec__
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin).resolve().relative_to(CODE_ROOT).as_posix()


def loaded_modules() -> list[str]:
    """Project modules in this process, the inert ones and the resolvers left out."""
    return sorted(
        m
        for m in list(sys.modules)
        if (m.split(".")[0] in ("imbalance", "stages"))
        and not (m in RESOLVERS or m == INERT or m.startswith(f"{INERT}."))
        and getattr(sys.modules[m], "__file__", None)
    )


def digest(files: list[str]) -> dict[str, str]:
    """``{file: SHA-256}`` of project files (paths relative to the code root)."""
    return {f: hashlib.sha256((CODE_ROOT / f).read_bytes()).hexdigest() for f in files}


def loaded_code(entry: tuple[str, ...] = ENTRY) -> dict[str, str]:
    """The digest of every project module loaded once ``entry`` is imported (and whatever
    the caller validated before): call it in a process of its own."""
    for module in entry:
        importlib.import_module(module)
    return digest(sorted({module_file(m) for m in loaded_modules()}))


def param_value(raw: dict[str, Any], key: str) -> Any:
    """``a.b.c`` looked up in a params file's mapping."""
    node = raw
    for part in key.split("."):
        node = node[part]
    return node


def remedy_params(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """``{key: value}`` of every param remedy ``name``'s training reads."""
    section = "remedies" if name in (raw.get("remedies") or {}) else "retrain"
    keys = sorted([f"{section}.{name}", *TRAINING_PARAMS])
    return {key: param_value(raw, key) for key in keys}


def composition(name: str, code: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    """What ``compositions/<name>.json`` holds."""
    return {"remedy": name, "code": code, "params": params}
