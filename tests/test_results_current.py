"""The CI guard against stale results: dvc.lock must match the code and params next to it.

``test_committed_results_match_code_and_params`` runs :mod:`imbalance.tools.lockcheck` on
this repository (no data, no training: a clean clone passes or fails it in about a
second). The other tests build stale locks on purpose and check that exactly the stale
stages are named: a small synthetic DVC project whose dvc.lock DVC itself wrote with a
real ``dvc repro`` (so the md5s are DVC's, not ours), and a copy of this project's code,
dvc.yaml and params.yaml with a lock recorded from the workspace by an independent
writer (plain hashlib), to see how the real matrix stages are reported.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT, blocks_yaml_without_blocks, ok, tool_env

from imbalance.tools import lockcheck


def test_committed_results_match_code_and_params() -> None:
    result = lockcheck.check(PROJECT_ROOT)
    if not result.ok:
        pytest.fail(
            f"{result.report()}\n"
            "(`python -m imbalance.tools.lockcheck` prints this again; it needs no data)",
            pytrace=False,
        )


# ----------------------------------------------------------------------------- synthetic

DVC_YAML = """\
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, lib/common.py]
    params: [data]
    outs: [work/prepared.txt]
  train:
    matrix:
      model: [small, large]
      seed: [0, 1]
    cmd: python train.py ${item.model} ${item.seed}
    deps: [train.py, lib/common.py, work/prepared.txt]
    params:
      - train
      - models.${item.model}
    outs:
      - work/runs/${item.model}-${item.seed}.txt
  score:
    foreach: [0, 1]
    do:
      cmd: python score.py ${item}
      deps: [score.py, work/runs]
      outs:
        - work/scores/${item}.txt
  summary:
    cmd: python summary.py
    deps: [summary.py, work/scores]
    params: [{other.yaml: [title]}]
    metrics:
      - results/summary.json:
          cache: false
  figures:
    cmd: python figures.py
    deps: [figures.py]
    outs:
      - figs:
          cache: false
"""

SCRIPTS = {
    "lib/common.py": "SCALE = 2\n",
    "prepare.py": "import os\nos.makedirs('work', exist_ok=True)\n"
    "open('work/prepared.txt', 'w').write('prepared')\n",
    "train.py": "import os, sys\nos.makedirs('work/runs', exist_ok=True)\n"
    "open(f'work/runs/{sys.argv[1]}-{sys.argv[2]}.txt', 'w').write(sys.argv[1])\n",
    "score.py": "import os, sys\nos.makedirs('work/scores', exist_ok=True)\n"
    "open(f'work/scores/{sys.argv[1]}.txt', 'w').write(str(len(os.listdir('work/runs'))))\n",
    "figures.py": "import os\nos.makedirs('figs/sub', exist_ok=True)\n"
    "open('figs/a.txt', 'w').write('a')\nopen('figs/sub/b.txt', 'w').write('b')\n",
    "summary.py": "import json, os\nos.makedirs('results', exist_ok=True)\n"
    "json.dump({'n': len(os.listdir('work/scores'))}, open('results/summary.json', 'w'))\n",
}

PARAMS = {
    "data": {"source": "https://example.invalid/official.tar.gz", "sha256": "aa", "size": 3},
    "train": {"epochs": 2},
    "models": {"small": {"lr": 0.1}, "large": {"lr": 0.2}},
}

TRAIN = [f"train@{m}-{s}" for m in ("small", "large") for s in (0, 1)]


def _git(root: Path, *args: str) -> None:
    ok(subprocess.run(["git", *args], cwd=root, env=tool_env(), capture_output=True, text=True))


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dvc", *args]
    return subprocess.run(cmd, cwd=root, env=tool_env(), capture_output=True, text=True)


def _set_param(root: Path, dotted: str, value: object, file: str = "params.yaml") -> None:
    data = yaml.safe_load((root / file).read_text())
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    (root / file).write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def _synthetic_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real DVC project (matrix, foreach, a second params file), reproduced once."""
    root = tmp_path_factory.mktemp("lockcheck") / "project"
    root.mkdir()
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    (root / "other.yaml").write_text("title: study\n")
    for name, text in SCRIPTS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    _git(root, "init", "-q")
    ok(_dvc(root, "init", "-q"))
    ok(_dvc(root, "repro", "-q"))
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "results")
    return root


@pytest.fixture
def synthetic(_synthetic_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(_synthetic_template, root, symlinks=True)
    return root


def _stale(root: Path) -> dict[str, tuple[str, ...]]:
    return {s.stage: s.reasons for s in lockcheck.check(root).stale}


def test_a_fresh_dvc_repro_is_current(synthetic: Path) -> None:
    """DVC wrote this lock: every md5 and param value must match ours exactly."""
    result = lockcheck.check(synthetic)
    assert result.ok, result.report()
    assert result.refresh.startswith("dvc repro")


def test_data_dependencies_are_not_compared(synthetic: Path) -> None:
    """Outputs of other stages are git-ignored; a clean clone has none, so they are skipped
    (`dvc status` would hash them)."""
    (synthetic / "work" / "prepared.txt").write_text("other data")
    assert lockcheck.check(synthetic).ok
    (synthetic / "work" / "prepared.txt").unlink()
    assert lockcheck.check(synthetic).ok


def test_a_changed_code_dep_names_exactly_its_stages(synthetic: Path) -> None:
    (synthetic / "train.py").write_text(SCRIPTS["train.py"] + "# tuned\n")
    result = lockcheck.check(synthetic)
    assert _stale(synthetic) == {name: ("changed train.py",) for name in TRAIN}
    assert result.downstream == ["score@0", "score@1", "summary"]
    assert result.lines() == [
        "train@* (4 stages): changed train.py",
        "re-run as well (their inputs are outputs of the above): score@* (2 stages), summary",
    ]
    assert result.refresh.startswith("dvc repro")


def test_a_shared_module_and_a_new_dep(synthetic: Path) -> None:
    (synthetic / "lib" / "common.py").write_text("SCALE = 3\n")
    (synthetic / "lib" / "extra.py").write_text("X = 1\n")  # new, not yet committed
    text = (synthetic / "dvc.yaml").read_text()
    (synthetic / "dvc.yaml").write_text(
        text.replace(
            "deps: [prepare.py, lib/common.py]", "deps: [prepare.py, lib/common.py, lib/extra.py]"
        )
    )
    stale = _stale(synthetic)
    assert stale == {
        "prepare": ("changed lib/common.py", "not in dvc.lock (new or renamed) lib/extra.py"),
        **{name: ("changed lib/common.py",) for name in TRAIN},
    }


def test_a_changed_param_names_only_the_matrix_items_using_it(synthetic: Path) -> None:
    _set_param(synthetic, "models.large.lr", 0.3)
    result = lockcheck.check(synthetic)
    assert _stale(synthetic) == {
        "train@large-0": ("params models.large.lr 0.2 -> 0.3",),
        "train@large-1": ("params models.large.lr 0.2 -> 0.3",),
    }
    assert result.lines()[0] == "train@large-* (2 stages): params models.large.lr 0.2 -> 0.3"


def test_whole_section_and_other_params_files(synthetic: Path) -> None:
    _set_param(synthetic, "data.size", 4)
    _set_param(synthetic, "title", "renamed", file="other.yaml")
    assert _stale(synthetic) == {
        "prepare": ("params data.size 3 -> 4",),
        "summary": ('params title "study" -> "renamed"',),
    }


def test_a_changed_data_source_makes_the_results_stale(synthetic: Path) -> None:
    """params.yaml names the data the results came from: another source is another study."""
    _set_param(synthetic, "data.source", "../shared/copy.tar.gz")
    result = lockcheck.check(synthetic)
    assert _stale(synthetic)["prepare"][0].startswith("params data.source ")
    assert result.refresh.startswith("dvc repro")


def test_a_new_stage_and_a_changed_command(synthetic: Path) -> None:
    text = (synthetic / "dvc.yaml").read_text()
    text = text.replace("cmd: python summary.py", "cmd: python summary.py --all")
    text += "  extra:\n    cmd: python -c pass\n"
    (synthetic / "dvc.yaml").write_text(text)
    stale = _stale(synthetic)
    assert stale == {
        "summary": ("command changed ('python summary.py' -> 'python summary.py --all')",),
        "extra": ("not in dvc.lock",),
    }


def test_committed_outputs_edited_after_the_run(synthetic: Path) -> None:
    """(d): a results file that is not what the recorded run wrote is caught too."""
    (synthetic / "results" / "summary.json").write_text('{"n": 99}')
    (synthetic / "figs" / "sub" / "b.txt").write_text("edited")
    assert _stale(synthetic) == {
        "figures": ("committed outputs differ from dvc.lock (edited after the run?) figs",),
        "summary": (
            "committed outputs differ from dvc.lock (edited after the run?) results/summary.json",
        ),
    }


def test_a_deleted_committed_output_is_stale(synthetic: Path) -> None:
    """(d): a results file or folder deleted from the workspace fails the guard, while a
    missing cached (git-ignored) output does not."""
    (synthetic / "results" / "summary.json").unlink()
    shutil.rmtree(synthetic / "figs")
    (synthetic / "work" / "scores" / "0.txt").unlink()
    assert _stale(synthetic) == {
        "figures": ("committed outputs missing (deleted?) figs",),
        "summary": ("committed outputs missing (deleted?) results/summary.json",),
    }


def test_this_projects_deleted_results_are_stale(tmp_path: Path) -> None:
    """The issue's case on this project's committed results: metrics/statistics.json and
    metrics/runs/seed0 deleted from a clone."""
    root = tmp_path / "clone"
    cmd = ["git", "clone", "-q", str(PROJECT_ROOT), str(root)]
    ok(subprocess.run(cmd, env=tool_env(), capture_output=True, text=True))
    before = _stale(root)
    (root / "metrics" / "statistics.json").unlink()
    shutil.rmtree(root / "metrics" / "runs" / "seed0")
    after = _stale(root)
    assert "committed outputs missing (deleted?) metrics/statistics.json" in after["compare"]
    assert "committed outputs missing (deleted?) metrics/runs/seed0" in after["evaluate@0"]
    assert not any("missing" in reason for reasons in before.values() for reason in reasons)


def test_cli_exit_status_and_one_line_errors(synthetic: Path, tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "imbalance.tools.lockcheck", *args]
        env = {**tool_env(), "PYTHONPATH": str(PROJECT_ROOT)}
        return subprocess.run(cmd, cwd=synthetic, env=env, capture_output=True, text=True)

    current = cli()
    assert current.returncode == 0, current.stderr
    assert "current" in current.stdout
    (synthetic / "score.py").write_text(SCRIPTS["score.py"] + "\n")
    stale = cli()
    assert stale.returncode == 1
    assert "  score@* (2 stages): changed score.py" in stale.stdout
    assert "refresh: dvc repro" in stale.stdout
    missing = cli(str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: ") and len(missing.stderr.splitlines()) == 1


# ----------------------------------------------------------------------------- this project


def _record_lock(root: Path) -> None:
    """Write a dvc.lock recording the workspace's code and params, as `dvc repro` would.

    An independent writer (hashlib, PyYAML), so the check is not tested against itself:
    DVC 3 records ``hash: md5`` and the md5 of the file's bytes for each dependency, the
    declared params' values, and the command.
    """
    from dvc.parsing import DataResolver
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        data = yaml.safe_load((root / "dvc.yaml").read_text())
        stages = DataResolver(repo, str(root), data).resolve()["stages"]
    param_files: dict[str, dict] = {}  # type: ignore[type-arg]

    def lookup(key: str, file: str = "params.yaml") -> object:
        if file not in param_files:
            param_files[file] = yaml.safe_load((root / file).read_text())
        node = param_files[file]
        for part in key.split("."):
            node = node[part]
        return node

    lock: dict[str, object] = {"schema": "2.0", "stages": {}}
    for name, stage in stages.items():
        deps = []
        for path in sorted(stage.get("deps", [])):
            if (root / path).is_file():
                blob = (root / path).read_bytes()
                md5 = hashlib.md5(blob).hexdigest()
                deps.append({"path": path, "hash": "md5", "md5": md5, "size": len(blob)})
            elif (root / path).is_dir() and not path.startswith(("data", "models")):
                files = sorted(p for p in (root / path).rglob("*.py"))  # code folders
                entries = [
                    {
                        "md5": hashlib.md5(f.read_bytes()).hexdigest(),
                        "relpath": f.relative_to(root / path).as_posix(),
                    }
                    for f in files
                ]
                listing = json.dumps(entries, sort_keys=True).encode()
                md5 = hashlib.md5(listing).hexdigest() + ".dir"
                deps.append({"path": path, "hash": "md5", "md5": md5})
        recorded: dict[str, dict[str, object]] = {}
        for item in stage.get("params", []):  # `key`, or `{file: [keys]}` (blocks.yaml)
            for file, keys in (item if isinstance(item, dict) else {"params.yaml": [item]}).items():
                recorded.setdefault(file, {}).update({k: lookup(k, file) for k in keys})
        lock["stages"][name] = {  # type: ignore[index]
            "cmd": stage["cmd"],
            "deps": deps,
            "params": recorded,
        }
    (root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """This project's dvc.yaml, params.yaml and code in a new git + DVC repository."""
    root = tmp_path / "copy"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(PROJECT_ROOT / name, root / name)
    (root / "blocks.yaml").write_text(blocks_yaml_without_blocks())  # the matrix alone
    for name in ("stages", "imbalance"):
        shutil.copytree(PROJECT_ROOT / name, root / name, ignore=ignore)
    _git(root, "init", "-q")
    ok(_dvc(root, "init", "-q"))
    # the resolve stage's files, as a repro writes them (the other stages' deps)
    resolved = subprocess.run(
        [sys.executable, "-m", "stages.resolve"], cwd=root, capture_output=True, text=True
    )
    assert resolved.returncode == 0, resolved.stderr
    _record_lock(root)
    return root


def _groups(result: lockcheck.LockCheck, prefix: str) -> int:
    return len([s for s in result.stages if s.startswith(prefix)])


def params_of(root: Path) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((root / "params.yaml").read_text())


def test_this_projects_matrix_is_reported_by_group(project_copy: Path) -> None:
    first = lockcheck.check(project_copy)
    assert first.ok, first.report()
    n_train, n_retrain = _groups(first, "train@"), _groups(first, "retrain@")
    n_evaluate = _groups(first, "evaluate@")
    assert n_train and n_retrain and n_evaluate
    raw = params_of(project_copy)
    n_remedies = len(raw["remedies"]) + len(raw["retrain"])

    train = project_copy / "imbalance" / "training" / "train.py"
    train.write_text(train.read_text() + "\n# changed\n")
    result = lockcheck.check(project_copy)
    # the code is a dep of the resolve stage only (a folder dep: dvc.lock has its hash
    # only); each training depends on its remedy's compositions/<remedy>.json, which a
    # changed training loop changes; the evaluation's and compare's files list no
    # training loop, but they read the predictions
    assert [s.stage for s in result.stale] == ["resolve"]
    head, rewrites = result.lines()[0].split("; ")
    assert head == "resolve: changed imbalance/training"
    assert rewrites.startswith("its re-run rewrites compositions/")
    assert rewrites.endswith(f" and {n_remedies - 4} more")
    assert result.lines()[1] == (
        f"re-run as well (their inputs are outputs of the above): "
        f"train@* ({n_train} stages), retrain@* ({n_retrain} stages), "
        f"evaluate@* ({n_evaluate} stages), compare"
    )


def test_this_projects_remedy_param_names_one_remedy(project_copy: Path) -> None:
    params = params_of(project_copy)
    remedy = next(r for r in sorted(params["remedies"]) if "augment" not in params["remedies"][r])
    seeds = params["seeds"]
    params["remedies"][remedy]["augment"] = {"flip": True}
    (project_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = lockcheck.check(project_copy)
    # only the resolve stage declares params; it rewrites the remedy's composition and
    # the files of the stages that read the whole `remedies` section (evaluate: which
    # training set each remedy used; compare)
    assert [s.stage for s in result.stale] == ["resolve"]
    change = f"params remedies.{remedy}.augment.flip (absent) -> true"
    files = sorted(
        [f"compositions/{remedy}.json"]
        + [f"compositions/stages/{s}.json" for s in ("compare", "evaluate", "evaluate_block")]
    )
    assert result.lines()[0] == f"resolve: {change}; its re-run rewrites {', '.join(files)}"
    # (every retrain stage follows too: it depends on its seed's scratch models folder)
    trainings = [s for s in result.downstream if s.startswith("train@")]
    assert trainings == [f"train@{remedy}-{s}" for s in seeds]
    assert "compare" in result.downstream and "fetch" not in result.downstream


def test_this_projects_training_param_re_runs_every_training(project_copy: Path) -> None:
    """A param every training reads (train.max_steps) is declared by the resolve stage
    alone: it is stale, every training follows from its composition."""
    params = params_of(project_copy)
    params["train"]["max_steps"] *= 2
    (project_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = lockcheck.check(project_copy)
    assert [s.stage for s in result.stale] == ["resolve"]
    assert result.stale[0].reasons[0].startswith("params train.max_steps")
    trainings = [s for s in result.stages if s.startswith(("train@", "retrain@"))]
    assert [s for s in result.downstream if s in trainings] == trainings
    assert "compare" in result.downstream  # its budget table states the protocol
    assert "split" not in result.downstream


def test_a_component_edit_re_runs_only_the_trainings_of_the_remedies_using_it(
    project_copy: Path,
) -> None:
    """The weight-averaging component's module: by hand from params.yaml, the remedies
    whose entry has an `average` key use it; only their trainings, the evaluations and
    compare (whose file lists the whole components folder) follow."""
    params = params_of(project_copy)
    users = [r for r, spec in params["remedies"].items() if "average" in (spec or {})]
    assert users and len(users) < len(params["remedies"])
    path = project_copy / "imbalance/training/components/average.py"
    path.write_text(path.read_text() + "\n# changed\n")
    result = lockcheck.check(project_copy)
    assert [s.stage for s in result.stale] == ["resolve"]
    files = sorted([f"compositions/{r}.json" for r in users] + ["compositions/stages/compare.json"])
    assert result.stale[0].reasons == (
        "changed imbalance/training",
        f"its re-run rewrites {', '.join(files)}",
    )
    trainings = [s for s in result.downstream if s.startswith("train@")]
    assert sorted(trainings) == sorted(f"train@{r}-{s}" for r in users for s in params["seeds"])
    # (the retrain stages follow: each depends on its seed's whole scratch models folder)
    assert result.downstream[-1] == "compare"


def test_a_comment_in_an_inert_module_stales_nothing(project_copy: Path) -> None:
    path = project_copy / "imbalance/runtime/warm.py"
    path.write_text(path.read_text() + "\n# changed\n")
    assert lockcheck.check(project_copy).ok


def test_a_resolve_stage_that_would_fail_moves_everything_it_feeds(project_copy: Path) -> None:
    """An invalid remedy: the guard cannot ask resolve which files change, so it says why
    and names every consumer of its files as re-running."""
    params = params_of(project_copy)
    first = next(iter(params["remedies"]))
    params["remedies"][first] = {"sampler": "no_such_sampler"}
    (project_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = lockcheck.check(project_copy)
    assert [s.stage for s in result.stale] == ["resolve"]
    failed = result.stale[0].reasons[-1]
    assert failed.startswith("its re-run fails: error: ") and "no_such_sampler" in failed
    assert {"fetch", "split", "compare"} <= set(result.downstream)
    assert all(
        f"train@{r}-{s}" in result.downstream for r in params["remedies"] for s in params["seeds"]
    )
