"""The sequential study's seed blocks (blocks.yaml ``sequential_blocks``,
:mod:`imbalance.blocks`): their validation, their paths, compare reading them, and the
questions pairing by common seeds; and that they change nothing a normal training loads.

No DVC, no training: hand-made params and run files in a temporary project (the
end-to-end check through real `dvc repro` is the slow test at the end).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from imbalance import blocks as blocks_mod
from imbalance.analysis import runs as runs_mod
from imbalance.blocks import BlockLayout, Blocks, all_seeds, in_block, seeds_of
from imbalance.cli import UserError
from imbalance.layout import Layout
from imbalance.params import Params, parse

ROOT = Path(__file__).resolve().parents[1]


def _study() -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = [0, 1, 2]
    raw["tuning_seeds"] = [100, 101]
    return parse(raw)


def _blocks(p: Params | None = None, **blocks: Any) -> Blocks:
    return blocks_mod.parse({"sequential_blocks": blocks}, p or _study())


# ----------------------------------------------------------------------------- params


def test_the_committed_blocks_are_valid_and_params_yaml_knows_none() -> None:
    raw = yaml.safe_load((ROOT / "blocks.yaml").read_text())
    assert list(raw) == ["block_workers", "sequential_blocks"]
    # decide appends to the end of the file
    b = blocks_mod.load(
        parse(yaml.safe_load((ROOT / "params.yaml").read_text())), ROOT / "blocks.yaml"
    )
    assert list(b.sequential_blocks) == list(raw["sequential_blocks"] or {})
    assert "sequential_blocks" not in yaml.safe_load((ROOT / "params.yaml").read_text())
    # params.py is strict and unchanged: the blocks cannot be a params.yaml key
    raw_params = yaml.safe_load((ROOT / "params.yaml").read_text())
    with pytest.raises(UserError, match=r"sequential_blocks: unknown key"):
        parse({**raw_params, "sequential_blocks": {}})


def test_a_valid_block_and_the_seeds_of_each_remedy() -> None:
    p = _study()
    b = _blocks(
        p,
        b5={"seeds": [3, 4], "remedies": ["undersample", "two_phase_undersample"]},
        b10={"seeds": [5, 6, 7], "remedies": ["undersample"]},
    )
    assert seeds_of(p, b, "undersample") == [0, 1, 2, 3, 4, 5, 6, 7]
    assert seeds_of(p, b, "two_phase_undersample") == [0, 1, 2, 3, 4]
    assert seeds_of(p, b, "baseline") == [0, 1, 2]
    assert all_seeds(p, b) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert blocks_mod.block(b, "b10").seeds == [5, 6, 7]
    with pytest.raises(UserError, match=r"unknown block 'b7': .* \['b10', 'b5'\]"):
        blocks_mod.block(b, "b7")
    assert blocks_mod.load(p, Path("/nonexistent/blocks.yaml")) == Blocks()  # no file: none


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        (
            {"b5": {"seeds": [2, 3], "remedies": ["baseline"]}},
            r"^blocks.yaml: sequential_blocks.b5.seeds: seed 2 is already in params.yaml "
            r"seeds; a block adds new seeds only",
        ),
        (
            {"b5": {"seeds": [3, 100], "remedies": ["baseline"]}},
            r"sequential_blocks.b5.seeds: seed 100 is already in params.yaml tuning_seeds",
        ),
        (
            {
                "b5": {"seeds": [3, 4], "remedies": ["baseline"]},
                "b10": {"seeds": [4, 5], "remedies": ["class_weight"]},
            },
            r"sequential_blocks.b10.seeds: seed 4 is already in sequential_blocks.b5",
        ),
        (
            {"b5": {"seeds": [3, 3], "remedies": ["baseline"]}},
            r"sequential_blocks.b5.seeds must be distinct non-negative integers",
        ),
        (
            {"b5": {"seeds": [3], "remedies": ["focal"]}},
            r"sequential_blocks.b5.remedies: 'focal' is not a declared remedy; declare it "
            r"in params.yaml under `remedies` or `retrain`",
        ),
        (
            {"b5": {"seeds": [3], "remedies": ["two_phase_oversample"]}},
            r"sequential_blocks.b5.remedies: retrain remedy 'two_phase_oversample' starts "
            r"from 'oversample'.*; add 'oversample' to the block's remedies",
        ),
        (
            {"seed3": {"seeds": [3], "remedies": ["baseline"]}},
            r"sequential_blocks.seed3: a block name is part of stage names and paths",
        ),
        (
            {"b5": {"seeds": [], "remedies": ["baseline"]}},
            r"^blocks.yaml: sequential_blocks.b5.seeds: List should have at least 1 item",
        ),
        (
            {"b5": {"seeds": [3], "remedies": ["baseline"], "look": 5}},
            r"^blocks.yaml: sequential_blocks.b5.look: unknown key",
        ),
        (
            {"b5": {"seeds": [3], "remedies": "baseline"}},
            r"^blocks.yaml: sequential_blocks.b5.remedies: Input should be a valid list",
        ),
    ],
)
def test_block_errors_name_the_key_and_the_fix(blocks: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message) as err:
        _blocks(**blocks)
    assert "\n" not in str(err.value)


def test_a_bad_blocks_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "blocks.yaml"
    for text, message in [
        ("sequential_blocks: [b5]\n", r"blocks.yaml: sequential_blocks: Input should be a "),
        ("- 1\n", r"blocks.yaml: expected a mapping"),
        ("a: [\n", r"blocks.yaml: not valid YAML"),
        ("block_workers: 0\nsequential_blocks: {}\n", r"blocks.yaml: block_workers: Input "),
        ("extra: 1\n", r"blocks.yaml: extra: unknown key"),
    ]:
        path.write_text(text)
        with pytest.raises(UserError, match=message) as err:
            blocks_mod.load(_study(), path)
        assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- layout


def test_a_block_layout_puts_every_per_seed_path_in_the_block_folders() -> None:
    base = Layout(Path("/p"))
    b = in_block(base, "b5")
    assert isinstance(b, BlockLayout) and isinstance(b, Layout) and b.block == "b5"
    assert b.data_dir(3) == Path("/p/data/blocks/b5/seed3")
    assert b.model("oversample", 3) == Path("/p/models/blocks/b5/scratch/seed3/oversample.keras")
    assert b.model("x", 3, retrained=True) == Path("/p/models/blocks/b5/retrained/seed3/x.keras")
    assert b.predictions("x", 3) == Path("/p/predictions/blocks/b5/seed3/x.npz")
    assert b.training_dir("x", 3) == Path("/p/training/blocks/b5/x/seed3")
    assert b.run_metrics("x", 3) == Path("/p/metrics/runs/blocks/b5/seed3/x.json")
    assert b.run_plots_dir(3) == Path("/p/plots/runs/blocks/b5/seed3")
    assert b.composition("x") == base.composition("x")  # the code is the project's
    assert b.params == base.params and b.statistics == base.statistics
    assert blocks_mod.block_composition(base, "b5") == Path("/p/compositions/blocks/b5.json")
    assert base.run_metrics("x", 3) == Path("/p/metrics/runs/seed3/x.json")  # unchanged


# ----------------------------------------------------------------------------- compare


def _write_run(path: Path, recall: float, auc: float) -> None:
    from test_compare import run_file

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run_file(recall, auc)))


def test_load_runs_reads_a_blocks_runs_for_its_remedies_only(tmp_path: Path) -> None:
    from imbalance.analysis.runs import load_runs

    p = _study()
    b = _blocks(p, b4={"seeds": [3, 4], "remedies": ["class_weight"]})
    layout = Layout(tmp_path)
    for seed in (0, 1, 2):
        for remedy in p.names:
            _write_run(layout.run_metrics(remedy, seed), 0.5, 0.8)
    with pytest.raises(UserError, match=r"blocks/b4/seed3/class_weight.json: missing; run "):
        load_runs(p, layout, b)
    _write_run(tmp_path / "metrics/runs/blocks/b4/seed3/class_weight.json", 0.7, 0.9)
    _write_run(tmp_path / "metrics/runs/blocks/b4/seed4/class_weight.json", 0.9, 0.9)
    assert list(load_runs(p, layout)["class_weight"]) == [0, 1, 2]  # no blocks: seeds only
    runs = load_runs(p, layout, b)
    assert list(runs["class_weight"]) == [0, 1, 2, 3, 4]
    assert list(runs["baseline"]) == [0, 1, 2]
    assert runs["class_weight"][4]["test"]["recall"] == 0.9


def test_statistics_use_each_remedys_seeds_and_pair_on_the_common_ones() -> None:
    from test_compare import make_params, run_file

    from imbalance.analysis import compare

    p = make_params([0, 1, 2], remedies={"baseline": {}, "oversample": {"sampler": "oversample"}})
    raw = p.model_dump()
    raw["retrain"] = {}
    p = parse(raw)
    b = _blocks(p, b5={"seeds": [3, 4], "remedies": ["oversample"]})
    recall = {"baseline": [0.1, 0.3, 0.2], "oversample": [0.5, 0.6, 0.7, 0.8, 0.9]}
    runs = {r: {s: run_file(v, 0.9) for s, v in enumerate(vals)} for r, vals in recall.items()}
    st = compare.statistics(p, runs, b)
    assert st["seeds"] == [0, 1, 2, 3, 4]
    assert st["seeds_by_remedy"] == {"baseline": [0, 1, 2], "oversample": [0, 1, 2, 3, 4]}
    over, base = (
        st["remedies"]["oversample"]["test.recall"],
        st["remedies"]["baseline"]["test.recall"],
    )
    assert (over["n"], base["n"]) == (5, 3)
    assert over["mean"] == pytest.approx(0.7)  # (0.5 + ... + 0.9) / 5
    diff = st["paired"]["reference"]["oversample"]["test.recall"]
    assert diff["n"] == 3 and diff["mean_diff"] == pytest.approx(0.4)  # seeds 0-2 only
    rows = compare.remedy_metrics(st)
    assert rows["oversample"]["n_seeds"] == 5 and rows["baseline"]["n_seeds"] == 3


def test_a_question_over_remedies_with_different_seed_counts_has_n_of_the_paired_seeds() -> None:
    from test_compare import HELD, make_runs, run_file

    from imbalance.analysis import claims, compare

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["seeds"] = [0, 1, 2]
    p = parse(raw)
    runs = make_runs({r: v for r, v in HELD.items() if r in p.names}, [0, 1, 2])
    for r in p.names:  # the study's other remedies: ran seeds 0-2
        runs.setdefault(r, {s: run_file(0.5, 0.85) for s in (0, 1, 2)})
    runs["class_weight"] |= {3: run_file(0.8, 0.9), 4: run_file(0.79, 0.9)}
    out = {q["id"]: q for q in claims.check_questions(p, runs, compare.ceiling_remedies(p))}
    assert out["b"]["n"] == 3  # class_weight (5 seeds) - oversample (3): paired on 3
    assert out["a"]["n"] == 3  # baseline alone
    assert all(t["n"] == 3 for t in out["c"]["tests"])  # undersample (3) vs class_weight


def test_the_compare_stage_reports_a_blocks_remedies_with_their_own_n(tmp_path: Path) -> None:
    from test_compare import _write_seed, make_params

    from imbalance.analysis import compare

    remedies = {"baseline": {}, "class_weight": {"weights": {"kind": "balanced"}}}
    p = make_params([0, 1], remedies=remedies, retrain={})
    for seed in p.seeds:
        _write_seed(tmp_path, p, seed)
    (tmp_path / "blocks.yaml").write_text(
        "sequential_blocks:\n  b3: {seeds: [7], remedies: [class_weight]}\n"
    )
    _write_run(in_block(Layout(tmp_path), "b3").run_metrics("class_weight", 7), 0.6, 0.9)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    manifest = {"source": "/x/imgs.tar.gz", "sha256": "ab" * 32, "kind": "image-folder"}
    (tmp_path / "data" / "raw" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        UserError, match=r"b3/seed7/roc.json: missing; run `dvc repro evaluate_block@b3`"
    ):
        compare.run_compare(p, Layout(tmp_path))
    # the block's ROC data: seed 0's class_weight curve, bent so its mean moves
    seed0 = json.loads((Layout(tmp_path).run_plots_dir(0) / "roc.json").read_text())["roc"]
    own = [r | {"tpr": 1.0} for r in seed0 if r["remedy"] == "class_weight"]
    roc_file = in_block(Layout(tmp_path), "b3").run_plots_dir(7) / "roc.json"
    roc_file.parent.mkdir(parents=True)
    roc_file.write_text(json.dumps({"roc": own}))
    roc = runs_mod.read_roc(p, Layout(tmp_path), blocks_mod.load(p, tmp_path / "blocks.yaml"))
    assert list(roc) == [("", 0), ("", 1), ("b3", 7)]

    compare.run_compare(p, Layout(tmp_path))

    rows = {r: json.loads((tmp_path / f"metrics/remedies/{r}.json").read_text()) for r in remedies}
    assert rows["class_weight"]["n_seeds"] == 3 and rows["baseline"]["n_seeds"] == 2
    md = (tmp_path / "metrics" / "comparison.md").read_text()
    assert "**Sequential blocks** (blocks.yaml `sequential_blocks`" in md
    assert "`b3` seeds 7 for `class_weight`" in md
    assert "| `class_weight` (n = 3) |" in md  # the test-metrics row, over its own seeds
    assert "| `baseline` |" in md
    # the paired row against the reference: the 2 seeds both ran, as many as the study's
    assert "| `class_weight` | recall | " in md  # n = 2 = the study's: no "(n = ...)"
    stats_file = json.loads((tmp_path / "metrics" / "statistics.json").read_text())
    assert stats_file["paired"]["reference"]["class_weight"]["test.recall"]["n"] == 2
    assert stats_file["seeds_by_remedy"]["class_weight"] == [0, 1, 7]


# ----------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_a_block_runs_through_dvc_repro_and_compare_counts_its_seeds(tiny_project: Any) -> None:
    """One seed for two remedies, then a block of one more seed for one of them: real
    `dvc repro` of the tiny project (a few optimizer steps per run)."""
    import re

    from conftest import ok

    project = tiny_project
    project.set_params(
        {
            "seeds": [0],
            "remedies": {"baseline": {}, "class_weight": {"weights": {"kind": "balanced"}}},
            "retrain": {},
            "compare.reference": "baseline",
            "compare.also_against": [],
        }
    )
    blocks_file = project.root / "blocks.yaml"
    blocks_file.write_text(
        blocks_file.read_text().replace(
            "sequential_blocks: {}",
            "sequential_blocks:\n  b2: {seeds: [1, 2], remedies: [class_weight]}",
        )
    )
    first = ok(project.dvc("repro"))
    ran = set(re.findall(r"Running stage '([^']+)'", first))
    blocks = {"split_block@b2", "train_block@b2", "evaluate_block@b2"}
    assert blocks | {"resolve", "compare"} <= ran
    assert not any(s.endswith(("-1", "-2")) for s in ran)  # seeds 1, 2: in the block only
    root = project.root
    assert (root / "models/blocks/b2/scratch/seed1/class_weight.keras").is_file()
    assert not (root / "models/blocks/b2/scratch/seed1/baseline.keras").exists()
    run = json.loads((root / "metrics/runs/blocks/b2/seed1/class_weight.json").read_text())
    assert run["steps_trained"] == 4  # the tiny project's budget, through the same loop

    rows = {
        r: json.loads((root / f"metrics/remedies/{r}.json").read_text())
        for r in ("baseline", "class_weight")
    }
    assert rows["class_weight"]["n_seeds"] == 3 and rows["baseline"]["n_seeds"] == 1
    stats = json.loads((root / "metrics/statistics.json").read_text())
    assert stats["seeds_by_remedy"] == {"baseline": [0], "class_weight": [0, 1, 2]}
    assert stats["paired"]["reference"]["class_weight"]["test.recall"]["n"] == 1

    assert "up to date" in ok(project.dvc("status")).lower()
    again = ok(project.dvc("repro"))
    assert not re.findall(r"Running stage '([^']+)'", again), again
    assert not re.findall(r"Stage '([^']+)' is cached - skipping run", again), again

    # two runs side by side, each in its own process: the same bytes as one at a time
    outputs = sorted((root / "predictions/blocks/b2").rglob("*.npz"))
    before = {p: p.read_bytes() for p in [*outputs, *(root / "models/blocks/b2").rglob("*.keras")]}
    assert len(outputs) == 2
    blocks_file.write_text(blocks_file.read_text().replace("block_workers: 1", "block_workers: 2"))
    assert "up to date" in ok(project.dvc("status")).lower()  # how it runs: declared by none
    ok(project.dvc("repro", "--force", "--single-item", "train_block@b2"))
    assert {p: p.read_bytes() for p in before} == before

    # another remedy's params change: its training re-runs, the block's does not (the
    # block's file, compositions/blocks/b2.json, keeps its bytes)
    project.set_params({"remedies.baseline": {"output_bias_init": True}})
    edited = ok(project.dvc("repro"))
    ran = set(re.findall(r"Running stage '([^']+)'", edited))
    assert {"train@baseline-0", "resolve"} <= ran
    assert "train_block@b2" not in ran and "split_block@b2" not in ran, ran
    _block_stages_load_only_their_deps(project)


def _block_stages_load_only_their_deps(project: Any) -> None:
    """test_pipeline's dependency check for the block stages (its study has no block):
    every project module a block stage's command loads is one of its dvc.yaml deps, the
    ``compositions/blocks/<b>.json`` file standing for every file it lists."""
    import re
    import sys

    from conftest import ok
    from dvc.repo import Repo
    from test_pipeline import INERT, _is_docstring_only

    root = project.root
    with Repo(str(root)) as repo:
        stages = {s.name: s for s in repo.index.stages if s.name.endswith("_block@b2")}
        commands = {
            n: (s.cmd, {Path(d.def_path).as_posix() for d in s.deps}) for n, s in stages.items()
        }
    assert len(commands) == 3
    missing = {}
    for name, (cmd, deps) in commands.items():
        for dep in list(deps):  # the resolve stage's files: the code each stage runs
            if dep.startswith("compositions/"):
                deps |= set(json.loads((root / dep).read_text())["code"])
        argv = cmd.split()
        result = project.run(sys.executable, "-X", "importtime", *argv[1:])
        ok(result)
        loaded = set(
            re.findall(r"^import time:.*\|\s*((?:imbalance|stages)[\w.]*)$", result.stderr, re.M)
        )
        loaded.add(argv[2])
        for module in sorted(loaded):
            rel = module.replace(".", "/")
            path = f"{rel}/__init__.py" if (root / rel).is_dir() else f"{rel}.py"
            if path in INERT or (path.endswith("__init__.py") and _is_docstring_only(root / path)):
                continue
            if not any(path == d or path.startswith(f"{d}/") for d in deps):
                missing.setdefault(name, []).append(path)
    assert not missing, f"dvc.yaml: block stages load modules they do not depend on: {missing}"


# ------------------------------------------------------------ nothing else changes


def test_no_module_a_normal_stage_loads_imports_the_block_code() -> None:
    """The block code (imbalance/blocks.py, stages/*_block.py) is imported by the block
    stages and the analysis only: no module a composition lists (the code of every
    ``train@<remedy>-<seed>``), nor any module of imbalance/training or imbalance/data,
    imports it, so the compositions and the existing stages' code deps are the same
    with or without blocks."""
    from test_inert import imports

    listed = {
        f for c in (ROOT / "compositions").glob("*.json") for f in json.loads(c.read_text())["code"]
    }
    assert "imbalance/training/train.py" in listed
    assert not any("block" in f for f in listed), listed
    code = {ROOT / f for f in listed}
    code |= {*(ROOT / "imbalance/training").rglob("*.py"), *(ROOT / "imbalance/data").rglob("*.py")}
    code |= {ROOT / "stages/train.py", ROOT / "stages/resolve.py", ROOT / "imbalance/params.py"}
    wrong = {
        p.relative_to(ROOT).as_posix()
        for p in code
        if any(m == "imbalance.blocks" or m.startswith("imbalance.blocks.") for m in imports(p))
    }
    assert not wrong, wrong
    assert not any("block" in p.name for p in (ROOT / "imbalance/training").rglob("*.py"))
