"""The ``resolve`` stage: one stage reads the code and params, every other stage its file.

Every stage but ``resolve`` depends on a file under ``compositions/`` instead of code files
and params (DVC checks every dependency and parses params.yaml once per stage declaring
params: most of a no-op ``dvc repro``, issue 21). These tests check that the declarations
cover what each file carries, with DVC's own parser, that each file carries the values
params.yaml holds (looked up here by hand), and that a training's code list is the one a
fresh process loads.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT

from imbalance import params as params_mod
from imbalance import resolution
from imbalance.cli import UserError
from imbalance.tools import lockcheck
from imbalance.training import resolve


@pytest.fixture(scope="module")
def stages() -> dict[str, dict]:  # type: ignore[type-arg]
    """dvc.yaml's stages as DVC expands them."""
    return lockcheck._resolve_stages(PROJECT_ROOT)


def _declared(stage: dict) -> set[str]:  # type: ignore[type-arg]
    """A stage's params as ``key`` (params.yaml) or ``file:key``."""
    keys = set()
    for item in stage.get("params") or []:
        if isinstance(item, str):
            keys.add(item)
        else:
            for file, listed in item.items():
                keys |= {k if file == "params.yaml" else f"{file}:{k}" for k in listed}
    return keys


def _covers(declared: set[str], key: str) -> bool:
    """Is ``key`` (or a section holding it) declared?"""
    parts = key.split(".")
    return any(".".join(parts[:i]) in declared for i in range(1, len(parts) + 1))


def test_only_the_resolve_stage_reads_code_and_params(stages) -> None:
    """Every other stage's deps are data and its compositions/ file; its params, at most
    its own block's entry (a foreach key DVC can interpolate)."""
    resolver = stages["resolve"]
    assert lockcheck.RESOLVED in lockcheck._paths(resolver["outs"])
    for name, stage in stages.items():
        if name == "resolve":
            continue
        code = [d for d in stage["deps"] if d.startswith(("stages", "imbalance"))]
        assert code == [], name
        assert any(d.startswith("compositions/") for d in stage["deps"]), name
        assert _declared(stage) <= {f"blocks.yaml:sequential_blocks.{name.split('@')[-1]}"}, name
    assert not any(stages[n].get("params") for n in stages if n.startswith("train_block@"))


def test_the_resolve_stage_declares_every_param_and_code_file_a_file_carries(stages) -> None:
    declared = _declared(stages["resolve"])
    deps = stages["resolve"]["deps"]
    for name, needs in resolution.STAGES.items():
        for key in needs.params:
            assert _covers(declared, key), (name, key)
        for entry in needs.code:
            assert any(entry == d or entry.startswith(f"{d}/") for d in deps), (name, entry)
        # and the stage depends on its file
        assert any(str(resolution.stage_file(name)) in s["deps"] for s in _group(stages, name))
    for key in (*resolve.TRAINING_PARAMS, "remedies", "retrain", "blocks.yaml:sequential_blocks"):
        assert _covers(declared, key), key
    listed = {
        f
        for c in (PROJECT_ROOT / "compositions").rglob("*.json")
        for f in json.loads(c.read_text())["code"]
    }
    assert listed
    uncovered = [f for f in listed if not any(f == d or f.startswith(f"{d}/") for d in deps)]
    assert uncovered == []


def _group(stages: dict, name: str) -> list[dict]:  # type: ignore[type-arg]
    return [s for n, s in stages.items() if n.split("@")[0] == name]


def _project(tmp_path: Path) -> Path:
    for name in ("dvc.yaml", "params.yaml", "blocks.yaml"):
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    for name in ("stages", "imbalance"):
        shutil.copytree(
            PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def _resolved(root: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    """What ``python -m stages.resolve --dry-run`` prints in ``root`` (a fresh process)."""
    proc = subprocess.run(
        [sys.executable, "-m", "stages.resolve", "--dry-run"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _by_hand(raw: dict, key: str) -> object:  # type: ignore[type-arg]
    node = raw
    for part in key.split("."):
        node = node[part]
    return node


def test_each_file_carries_the_declared_values(tmp_path: Path) -> None:
    root = _project(tmp_path)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    files = _resolved(root)
    for name in (next(iter(raw["remedies"])), next(iter(raw["retrain"]))):
        written = files[f"{name}.json"]
        assert written["remedy"] == name and written["code"]
        section = "remedies" if name in raw["remedies"] else "retrain"
        keys = sorted([f"{section}.{name}", *resolve.TRAINING_PARAMS])
        assert sorted(written["params"]) == keys
        for key in keys:
            assert written["params"][key] == _by_hand(raw, key), key
    blocks = yaml.safe_load((root / "blocks.yaml").read_text())["sequential_blocks"]
    assert blocks  # the committed study's blocks
    for block, spec in blocks.items():
        written = files[f"blocks/{block}.json"]
        assert written["seeds"] == spec["seeds"]
        assert sorted(written["remedies"]) == sorted(spec["remedies"])
        for key in resolve.TRAINING_PARAMS:
            assert written["params"][key] == _by_hand(raw, key), key
    evaluate = files["stages/evaluate.json"]
    assert evaluate["params"]["evaluate"] == raw["evaluate"]
    assert evaluate["params"]["remedies"] == raw["remedies"]
    assert "imbalance/analysis/evaluate.py" in evaluate["code"]


def test_a_training_lists_exactly_what_a_fresh_process_loads(tmp_path: Path) -> None:
    """The remedies are resolved in one stage, each in a fork of its own: no remedy's list
    may carry a module another remedy loaded (or miss one). Compared with a process that
    resolves one remedy and nothing else."""
    root = _project(tmp_path)
    files = _resolved(root)
    names = params_mod.load(root / "params.yaml").names
    for name in names:
        alone = subprocess.run(
            [
                sys.executable,
                "-c",
                "import json, sys; from imbalance import params; "
                "from imbalance.training import resolve; "
                f"params.load().remedy({name!r}); print(json.dumps(resolve.loaded_code()))",
            ],
            cwd=root,
            capture_output=True,
            text=True,
        )
        assert alone.returncode == 0, alone.stderr
        assert files[f"{name}.json"]["code"] == json.loads(alone.stdout), name
    # the kinds differ, so the lists do (one module per component kind)
    assert len({json.dumps(files[f"{n}.json"]["code"]) for n in names}) > 1


def test_a_file_changes_exactly_with_its_values(tmp_path: Path) -> None:
    root = _project(tmp_path)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    name = next(iter(raw["remedies"]))
    first = _resolved(root)
    assert _resolved(root) == first  # deterministic

    def edit(section: str, key: str, value: object) -> None:
        raw[section][key] = value
        (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    # read by no training: the same training files, so no training re-runs
    edit("train", "predict_batch_size", 7)
    edit("evaluate", "threshold_objective", "f1")
    again = _resolved(root)
    assert {k: v for k, v in again.items() if "stages/" not in k} == {
        k: v for k, v in first.items() if "stages/" not in k
    }
    changed = {k for k in again if again[k] != first[k]}
    assert changed == {"stages/evaluate.json", "stages/evaluate_block.json", "stages/compare.json"}
    edit("train", "max_steps", raw["train"]["max_steps"] * 2)
    assert _resolved(root)[f"{name}.json"] != first[f"{name}.json"]


def test_write_leaves_exactly_the_expected_files(tmp_path: Path, monkeypatch) -> None:
    root = _project(tmp_path)
    stale = root / "compositions" / "gone.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    monkeypatch.chdir(root)
    p = params_mod.load(root / "params.yaml")
    n = subprocess.run(
        [sys.executable, "-m", "stages.resolve"], cwd=root, capture_output=True, text=True
    )
    assert n.returncode == 0, n.stderr
    written = {
        f.relative_to(root / "compositions").as_posix()
        for f in (root / "compositions").rglob("*.json")
    }
    assert written == set(_resolved(root)) and "gone.json" not in written
    assert len(written) == len(p.names) + len(resolution.STAGES) + len(
        yaml.safe_load((root / "blocks.yaml").read_text()).get("sequential_blocks") or {}
    )


def test_a_remedy_named_like_a_folder_is_one_user_error(tmp_path: Path, monkeypatch) -> None:
    root = _project(tmp_path)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["remedies"]["stages"] = {}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(root)
    with pytest.raises(UserError, match="may not be named 'stages'"):
        resolution.expected(params_mod.load(root / "params.yaml"), root)


def test_an_undeclared_code_entry_is_one_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"imbalance/nowhere\.py does not exist; fix STAGES"):
        resolution.code_files(tmp_path, ("imbalance/nowhere.py",))
