"""The real pipeline, end to end, by real `dvc repro` on tiny data.

One module-scoped project runs the whole graph once (every declared remedy, one seed);
the tests then check what DVC promises on top of it: a clean status, a no-op second run,
re-running exactly what a change touches, experiments that `dvc metrics diff` can
compare, and byte-identical metrics from a forced re-run.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import TinyProject, ok

pytestmark = pytest.mark.slow


def ran(result) -> set[str]:
    """Stages `dvc repro` / `dvc exp run` executed (not those restored from run-cache)."""
    return set(re.findall(r"Running stage '([^']+)'", result.stdout))


def restored(result) -> set[str]:
    return set(re.findall(r"Stage '([^']+)' is cached - skipping run", result.stdout))


@pytest.fixture(scope="module")
def study(_tiny_template: TinyProject, tmp_path_factory: pytest.TempPathFactory) -> TinyProject:
    """Every remedy, one seed, built once for this module and committed."""
    root = tmp_path_factory.mktemp("pipeline") / "project"
    shutil.copytree(_tiny_template.root, root, symlinks=True)
    project = TinyProject(root, _tiny_template.source)
    # DRW must switch its weights on within the tiny run's 4 steps: 1 sampler epoch = 2 steps.
    project.set_params({"seeds": [0], "remedies.drw.weights.from_epoch": 1})
    first = project.dvc("repro")
    ok(first)
    project.first_run = first  # type: ignore[attr-defined]
    ok(project.git("add", "-A"))
    ok(project.git("commit", "-qm", "study"))
    return project


def test_repro_builds_everything_and_status_is_clean(study: TinyProject) -> None:
    p = study.params()
    names = list(p["remedies"]) + list(p["retrain"])
    expected = {"resolve", "fetch", "split", "evaluate@0", "compare"}
    expected |= {f"train@{n}-0" for n in p["remedies"]} | {f"retrain@{n}-0" for n in p["retrain"]}
    assert ran(study.first_run) == expected  # type: ignore[attr-defined]

    for name in ("train_balanced", "val_balanced", "train_imbalanced", "val_imbalanced", "test"):
        assert (study.root / "data" / "cifar2" / f"{name}.npz").is_file()
    rows = {p.stem for p in (study.root / "metrics" / "remedies").iterdir()}
    assert set(names) == rows
    table = (study.root / "metrics" / "comparison.md").read_text()
    for name in names:
        assert name in table
    assert "not the official" in table.lower() or "image folder" in table.lower()

    status = ok(study.dvc("status"))
    assert "up to date" in status.lower(), status
    again = study.dvc("repro")
    ok(again)
    assert ran(again) == set() and restored(again) == set()


def test_deleting_a_model_reruns_only_its_stage(study: TinyProject) -> None:
    model = study.root / "models" / "scratch" / "seed0" / "oversample.keras"
    before = model.read_bytes()
    model.unlink()
    result = study.dvc("repro")
    ok(result)
    touched = ran(result) | restored(result)
    assert "train@oversample-0" in touched
    # Model files are byte-deterministic, so the rebuilt model equals the old one and
    # nothing downstream (two-phase, evaluation) needs to run again.
    assert model.read_bytes() == before
    assert touched == {"train@oversample-0"}, touched


def test_param_change_reruns_only_what_depends_on_it(study: TinyProject) -> None:
    study.set_params({"evaluate.threshold_objective": "f1"})
    result = study.dvc("repro")
    ok(result)
    assert ran(result) == {"resolve", "evaluate@0", "compare"}
    ok(study.git("checkout", "params.yaml"))
    ok(study.dvc("repro"))


def test_a_training_param_reaches_the_trainings_through_their_compositions(
    study: TinyProject,
) -> None:
    """The training stages declare no params (issue 21, docs/performance.md): a param they
    read re-runs the resolve stage, which declares it, and the rewritten compositions
    make every training stale."""
    rate = study.params()["train"]["learning_rate"]
    study.set_params({"train.learning_rate": rate * 2})
    result = study.dvc("repro", "--single-item", "resolve")
    ok(result)
    assert ran(result) == {"resolve"}
    status = json.loads(ok(study.dvc("status", "--json")))
    trainings = {s for s in status if s.split("@")[0] in ("train", "retrain")}
    p = study.params()
    assert trainings == {f"train@{n}-0" for n in p["remedies"]} | {
        f"retrain@{n}-0" for n in p["retrain"]
    }
    ok(study.git("checkout", "--", "."))
    assert "up to date" in ok(study.dvc("status")).lower()


def test_experiment_metrics_diff_names_the_remedies_that_changed(study: TinyProject) -> None:
    # (natural, not undersample: in 4 tiny steps the two class-balanced samplers can give
    # the same rounded metrics)
    result = study.dvc("exp", "run", "-S", "remedies.oversample.sampler=natural")
    ok(result)
    # Only oversample re-trains from scratch; the retrain stages depend on the seed's
    # scratch models and re-run, but only two_phase_oversample starts from oversample.
    trained = {s for s in ran(result) if s.startswith("train@")}
    assert trained == {"train@oversample-0"}
    diff = json.loads(ok(study.dvc("metrics", "diff", "--json", "--all")))
    changed = {
        Path(path).stem
        for path, metrics in diff.items()
        if "/remedies/" in path
        for change in metrics.values()
        if change.get("diff") not in (0, None)
    }
    assert "oversample" in changed
    assert "baseline" not in changed and "class_weight" not in changed
    ok(study.git("checkout", "--", "."))
    ok(study.dvc("checkout", "-q"))


def test_forced_rerun_gives_byte_identical_metrics(study: TinyProject) -> None:
    def snapshot() -> dict[str, bytes]:
        return {
            str(p.relative_to(study.root)): p.read_bytes()
            for p in sorted((study.root / "metrics").rglob("*.json"))
        }

    before = snapshot()
    assert before
    ok(study.dvc("repro", "--force"))
    after = snapshot()
    assert after.keys() == before.keys()
    differing = [k for k in before if before[k] != after[k]]
    assert differing == []


def test_plots_render_without_flags(study: TinyProject, tmp_path: Path) -> None:
    out = ok(study.dvc("plots", "show", "-o", str(tmp_path / "plots"), "--json"))
    rendered = json.loads(out)
    assert rendered, "dvc plots show rendered nothing"
    assert (tmp_path / "plots").exists()


# ------------------------------------------------------------------ dependencies
#: Modules a stage may load without declaring them (each changes how a stage runs, never
#: what it computes), with the test of tests/test_inert.py that proves it. Only
#: imbalance/runtime/ holds them, and the training stages' code list
#: (imbalance/training/resolve.py) leaves out that package as a whole.
INERT = {
    # docstring only
    "imbalance/runtime/__init__.py": "test_the_runtime_package_holds_only_the_inert_modules",
    # warm start: the stage forked from a server that imported TensorFlow
    "imbalance/runtime/warm.py": "test_inert_modules_leave_outputs_byte_identical",
    # profiling for the benchmark (IMBALANCE_PROFILE)
    "imbalance/runtime/profile.py": "test_inert_modules_leave_outputs_byte_identical",
}


def declared_code(root: Path, deps: set[str]) -> set[str]:
    """A stage's code deps: its files and folders, and the files a ``compositions/`` dep
    lists (the resolve stage's: the code remedy r's training loads, or a stage's code)."""
    out = set(deps)
    for dep in deps:
        if dep.startswith("compositions/"):
            out |= set(json.loads((root / dep).read_text())["code"])
    return out


def _is_docstring_only(path: Path) -> bool:
    """A package ``__init__`` that holds nothing but a docstring runs no code a stage uses."""
    import ast

    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def test_every_module_a_stage_loads_is_one_of_its_deps(study: TinyProject, tmp_path: Path):
    """A code change must re-run every stage whose output it can change.

    Fails when a stage loads a project module that is neither one of its deps (for a
    training stage: one its ``compositions/<remedy>.json`` lists) nor :data:`INERT`.

    Each stage's command runs again (in a copy of the built study, cold: no warm server)
    under ``python -X importtime``, which names every module the process imported,
    including the ones imported lazily inside functions; every module of the project
    among them must be a file listed in that stage's dvc.yaml ``deps``.
    """
    from dvc.repo import Repo

    root = tmp_path / "copy"
    shutil.copytree(study.root, root, symlinks=True)
    project = TinyProject(root, study.source)
    project.set_params({"runtime.warm_idle_s": 0})
    first_of_group: dict[str, tuple[str, set[str]]] = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            group = stage.name.split("@")[0]
            # every remedy's training (its own components), the first of other groups
            if group in ("train", "retrain"):
                group = stage.name.rsplit("-", 1)[0]
            if stage.cmd and group not in first_of_group:
                deps = {Path(d.def_path).as_posix() for d in stage.deps}
                first_of_group[group] = (stage.cmd, declared_code(root, deps))
    groups = {g.split("@")[0] for g in first_of_group}
    assert {"fetch", "split", "resolve", "train", "retrain", "evaluate", "compare"} <= groups

    missing: dict[str, list[str]] = {}
    for group, (cmd, deps) in first_of_group.items():
        argv = cmd.split()
        assert argv[0] == "python", cmd
        result = project.run(sys.executable, "-X", "importtime", *argv[1:])
        ok(result)
        loaded = set(
            re.findall(r"^import time:.*\|\s*((?:imbalance|stages)[\w.]*)$", result.stderr, re.M)
        )
        assert argv[1] == "-m", cmd
        loaded.add(argv[2])  # run as __main__, which -X importtime does not list
        assert any(m.startswith("imbalance.") for m in loaded), result.stderr[-2000:]
        for module in sorted(loaded):
            rel = module.replace(".", "/")
            path = f"{rel}/__init__.py" if (root / rel).is_dir() else f"{rel}.py"
            if path.endswith("__init__.py") and _is_docstring_only(root / path):
                continue
            if path in INERT:
                continue
            if not any(path == d or path.startswith(f"{d}/") for d in deps):  # file or folder
                missing.setdefault(group, []).append(path)
    assert not missing, f"dvc.yaml: stages load modules they do not depend on: {missing}"
