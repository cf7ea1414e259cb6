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

The file also carries the values of the params a training run reads (``params``: the
remedy's own entry, ``model``, the ``train.*`` keys that can change a number,
``split.validation`` / ``split.folds``), which the resolve stages declare in dvc.yaml in
place of the training stages: DVC parses params.yaml once for every stage that declares
params, and the training stages' parses were most of a no-op ``dvc repro``
(docs/performance.md). :func:`declared_params` reads the keys from the resolve stage's
own declaration, so the list is written once, in dvc.yaml; a change of any value
rewrites the file and re-runs the remedy's trainings.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path
from typing import Any

import yaml

from imbalance.cli import UserError
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


#: The resolve stage (dvc.yaml) of each params.yaml section a remedy can be declared in.
RESOLVE_STAGES = {"remedies": "resolve", "retrain": "resolve_retrain"}


def declared_keys(root: Path, name: str) -> list[str]:
    """The params.yaml keys remedy ``name``'s resolve stage declares in ``root/dvc.yaml``
    (``${key}`` replaced by ``name``): the params its training runs read."""
    raw = yaml.safe_load((root / "params.yaml").read_text()) or {}
    section = "remedies" if name in (raw.get("remedies") or {}) else "retrain"
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    keys = []
    for item in pipeline["stages"][RESOLVE_STAGES[section]]["do"]["params"]:
        if isinstance(item, str):
            keys.append(item)
        else:  # {file: [keys]}: only params.yaml, which the training reads
            for file, listed in item.items():
                if file != "params.yaml" or not listed:
                    raise UserError(
                        f"dvc.yaml: stage {RESOLVE_STAGES[section]}: params from {file!r} "
                        f"({listed}): a training reads only params.yaml; declare its keys "
                        "under `params.yaml:` (the &training_params list)"
                    )
                keys.extend(listed)
    return sorted(k.replace("${key}", name) for k in keys)


def declared_params(root: Path, name: str) -> dict[str, Any]:
    """``{key: value}`` of :func:`declared_keys`, as params.yaml holds them (read as
    :func:`imbalance.params.load` reads it)."""
    raw = yaml.safe_load((root / "params.yaml").read_text()) or {}
    values = {}
    for key in declared_keys(root, name):
        node = raw
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values


def composition(name: str, code: dict[str, str], params: dict[str, Any]) -> dict[str, Any]:
    """What ``compositions/<name>.json`` holds (imbalance.tools.lockcheck rebuilds it)."""
    return {"remedy": name, "code": code, "params": params}


def run(params: Params, name: str, layout: Layout) -> Path:
    """Write ``compositions/<name>.json``: every code file the remedy's training loads,
    and the values of the params it reads."""
    for module in ENTRY:
        importlib.import_module(module)
    params.remedy(name)  # validates; imports the modules of the kinds it uses
    files = sorted({module_file(m) for m in loaded_modules()})
    digest = {f: hashlib.sha256((CODE_ROOT / f).read_bytes()).hexdigest() for f in files}
    out = layout.composition(name)
    write_json(out, composition(name, digest, declared_params(layout.root, name)))
    return out
