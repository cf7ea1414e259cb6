"""Everything the pipeline's stages read besides data, resolved once into small files.

    python -m stages.resolve             writes compositions/ (the ``resolve`` stage)
    python -m stages.resolve --dry-run   prints what it would write, as JSON

Why one stage: DVC checks every dependency and parses the params file once per stage
that declares params, so a no-op ``dvc repro`` of a graph whose stages each list a dozen
code files and several params sections costs about twice bare DVC's (docs/performance.md,
issue 21). Here one stage, ``resolve``, depends on all the code and declares every param
a stage reads; it writes one file per consumer and every other stage depends on its file
(and its data) only:

- ``compositions/<remedy>.json``: the code a remedy's training loads and the params it
  reads (:mod:`imbalance.training.resolve`), for ``train@`` / ``retrain@``;
- ``compositions/blocks/<b>.json``: the same for a seed block's training (the code
  ``python -m stages.train_block`` loads, its remedies' entries, the training params, its
  seeds), for ``train_block@<b>``;
- ``compositions/stages/<stage>.json``: the code files and param values of each other
  stage (:data:`STAGES`), e.g. ``evaluate@<seed>``'s.

An edit re-runs ``resolve`` (about a second), which rewrites only the files whose
content changes, so DVC re-runs only the stages that read them: a comment in one
component kind's module re-trains only the remedies that use it; a change of
``evaluate.threshold`` re-runs the evaluations and compare, nothing else.

The training files list the modules a training really loads, so each remedy and block is
resolved in a process of its own (forked before it imports anything the others would
not). The other stages' code is declared (:data:`STAGES`) and checked against the modules
their commands load by tests/test_pipeline.py.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from imbalance.cli import UserError
from imbalance.files import write_text
from imbalance.params import Params
from imbalance.training import resolve

#: The folder the ``resolve`` stage writes (its one output).
OUT = Path("compositions")
#: Where the other stages' files go inside it.
STAGES_DIR = "stages"
#: A key of blocks.yaml rather than params.yaml is written ``blocks.yaml:<key>``.
BLOCKS_FILE = "blocks.yaml"


@dataclass(frozen=True)
class Needs:
    """What a stage's outputs can depend on besides its data: code files or folders
    (every ``*.py`` file in a folder), and the params it reads."""

    code: tuple[str, ...]
    params: tuple[str, ...]


_BASE = ("imbalance/cli.py", "imbalance/files.py", "imbalance/layout.py", "imbalance/params.py")
#: The evaluation's code: its metrics, the threshold rule, and which training set each
#: remedy used (its train_set component, components/base.py).
_EVALUATE = (
    "imbalance/analysis/evaluate.py",
    "imbalance/analysis/metrics.py",
    *_BASE,
    "imbalance/threshold.py",
    "imbalance/training/components/__init__.py",
    "imbalance/training/components/base.py",
    "imbalance/training/model.py",
)
_EVALUATE_PARAMS = (
    "classes",
    "evaluate",
    "split.validation",
    "split.val_fraction",
    "split.folds",
    "remedies",  # which remedies exist and which training set each used
    "retrain",
)

#: Every stage but the trainings: the code it runs and the params it reads. The ``resolve``
#: stage in dvc.yaml declares all of them (tests/test_resolve.py checks it).
STAGES: dict[str, Needs] = {
    # The source's params are the whole ``data.sources`` table: with the interpolated
    # key, ``dvc exp run -S data.source=typo`` stopped at DVC's own "Parameters
    # 'data.sources.typo' are missing" before params.py could name the entries there are.
    "fetch": Needs(
        ("stages/fetch.py", "imbalance/data", *_BASE),
        ("data.source", "data.sources", "data.max_extract_bytes"),
    ),
    "split": Needs(("stages/split.py", "imbalance/data", *_BASE), ("seeds", "classes", "split")),
    "evaluate": Needs(("stages/evaluate.py", *_EVALUATE), _EVALUATE_PARAMS),
    "split_block": Needs(
        ("stages/split_block.py", "imbalance/data", "imbalance/blocks.py", *_BASE),
        ("classes", "split"),
    ),
    "evaluate_block": Needs(
        ("stages/evaluate_block.py", "imbalance/blocks.py", *_EVALUATE), _EVALUATE_PARAMS
    ),
    "compare": Needs(
        (
            "stages/compare.py",
            "imbalance/analysis",
            "imbalance/blocks.py",
            *_BASE,
            "imbalance/threshold.py",
            # the compositions: ceilings (train_set, start), SAM's passes, the claims' remedies
            "imbalance/training/components",
            "imbalance/training/model.py",
        ),
        (
            "seeds",
            "classes",
            "split",
            "evaluate",
            "compare",
            "data.sources",  # the report names the data by the SHA-256 each source must have
            "remedies",
            "retrain",
            # the training-budget table states the protocol
            "train.batch_size",
            "train.max_steps",
            "train.stopping",
            "train.early_stopping.patience",
            f"{BLOCKS_FILE}:sequential_blocks",  # the blocks whose runs it reads
        ),
    ),
}

#: What ``python -m stages.train_block`` imports before it trains.
BLOCK_ENTRY = ("stages.train_block", "imbalance.training.train")


def stage_file(stage: str) -> Path:
    """The file stage ``stage`` of :data:`STAGES` depends on."""
    return OUT / STAGES_DIR / f"{stage}.json"


def code_files(root: Path, entries: tuple[str, ...]) -> list[str]:
    """The files of ``entries`` (a folder: every ``*.py`` in it) under the code root
    ``root``, relative, sorted."""
    files = set()
    for entry in entries:
        path = root / entry
        if path.is_dir():
            files |= {p.relative_to(root).as_posix() for p in path.rglob("*.py")}
        elif path.is_file():
            files.add(entry)
        else:
            raise UserError(f"imbalance/resolution.py: {entry} does not exist; fix STAGES")
    return sorted(files)


def _in_own_process(task: Callable[..., Any], jobs: list[tuple[Any, ...]]) -> list[Any]:
    """``task(*job)`` for each job, each in a fresh fork of this process, so the modules one
    job imports are not loaded when the next is resolved."""
    with multiprocessing.get_context("fork").Pool(2, maxtasksperchild=1) as pool:
        return pool.starmap(task, jobs, chunksize=1)


def _training_code(p: Params, names: list[str], entry: tuple[str, ...]) -> dict[str, str]:
    """The code a training of remedies ``names`` from ``entry`` loads (in its own process)."""
    for name in names:
        p.remedy(name)  # validates; imports the modules of the kinds it uses
    return resolve.loaded_code(entry)


def _values(raw: dict[str, dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for key in keys:
        file, _, name = key.rpartition(":")
        try:
            out[key] = resolve.param_value(raw[file or "params.yaml"], name)
        except (KeyError, TypeError):
            raise UserError(f"{file or 'params.yaml'}: `{name}` is missing") from None
    return out


def expected(p: Params, root: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """``{path in compositions/: content}`` of every file the resolve stage writes."""
    raw = {"params.yaml": yaml.safe_load((root / "params.yaml").read_text()) or {}}
    names = p.names
    clash = sorted({STAGES_DIR, "blocks"} & set(names))
    if clash:
        raise UserError(f"params.yaml: a remedy may not be named {clash[0]!r} (a folder in {OUT})")
    codes = _in_own_process(_training_code, [(p, [n], resolve.ENTRY) for n in names])
    files = {
        f"{n}.json": resolve.composition(n, code, resolve.remedy_params(raw["params.yaml"], n))
        for n, code in zip(names, codes, strict=True)
    }
    # imported only now: no remedy's process may load the block code
    from imbalance import blocks as blocks_mod

    blocks = blocks_mod.load(p, root / blocks_mod.BLOCKS_FILE)
    raw[BLOCKS_FILE] = {
        "sequential_blocks": {n: b.model_dump() for n, b in blocks.sequential_blocks.items()}
    }
    declared = {**p.remedies, **p.retrain}
    block_names = list(blocks.sequential_blocks)
    members = [blocks_mod.remedies_of(p, blocks, b) for b in block_names]
    codes = _in_own_process(_training_code, [(p, m, BLOCK_ENTRY) for m in members])
    training = {
        key: resolve.param_value(raw["params.yaml"], key) for key in resolve.TRAINING_PARAMS
    }
    for b, m, code in zip(block_names, members, codes, strict=True):
        files[f"blocks/{b}.json"] = {
            "block": b,
            "code": code,
            "params": training,
            "remedies": {n: declared[n] for n in m},
            "seeds": blocks.sequential_blocks[b].seeds,
        }
    for stage, needs in STAGES.items():
        files[f"{STAGES_DIR}/{stage}.json"] = {
            "stage": stage,
            "code": resolve.digest(code_files(resolve.CODE_ROOT, needs.code)),
            "params": _values(raw, needs.params),
        }
    return files


def render(content: dict[str, Any]) -> str:
    """A file's text as :func:`write` writes it (sorted keys, a fixed layout: equal content
    gives equal bytes), and as the results guard compares it."""
    return json.dumps(content, indent=2, sort_keys=True) + "\n"


def write(p: Params, root: Path = Path(".")) -> int:
    """Write every file of :func:`expected` into ``root/compositions`` (nothing else stays
    there); returns the number of files."""
    files = expected(p, root)  # everything validated before anything is written
    out = root / OUT
    if out.exists():
        for old in [f for f in out.rglob("*.json") if f.relative_to(out).as_posix() not in files]:
            old.unlink()
    for rel, content in files.items():
        write_text(out / rel, render(content))
    for folder in sorted((d for d in out.rglob("*") if d.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            shutil.rmtree(folder)
    return len(files)
