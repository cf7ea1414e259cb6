"""``resolve@<remedy>`` carries the params a training reads (issue 21).

The training stages declare no ``params:`` (DVC parses params.yaml once per stage that
declares params, and the ~50 training stages' parses were most of a no-op ``dvc repro``);
each remedy's resolve stage declares them instead and writes their values into
``compositions/<remedy>.json``, the file the remedy's trainings depend on. These tests
check the declarations with DVC's own parser and the file's bytes against the values.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT_ROOT

from imbalance import params as params_mod
from imbalance.layout import Layout
from imbalance.tools import lockcheck
from imbalance.training import resolve


def _keys(declared: list[object] | None) -> list[str]:
    """A stage's params.yaml keys (``key`` or ``{params.yaml: [keys]}`` items)."""
    keys: list[str] = []
    for item in declared or []:
        if isinstance(item, str):
            keys.append(item)
        else:
            assert isinstance(item, dict)
            keys.extend(k for file, ks in item.items() if file == "params.yaml" for k in ks)
    return sorted(keys)


@pytest.fixture(scope="module")
def stages() -> dict[str, dict]:  # type: ignore[type-arg]
    """dvc.yaml's stages as DVC expands them."""
    return lockcheck._resolve_stages(PROJECT_ROOT)


def test_training_stages_declare_no_params_their_resolve_stage_does(stages) -> None:
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    trainings = [n for n in stages if n.split("@")[0] in ("train", "retrain")]
    assert trainings
    assert [n for n in trainings if stages[n].get("params")] == []
    for section, group in resolve.RESOLVE_STAGES.items():
        for name in raw[section]:
            stage = stages[f"{group}@{name}"]
            # the list resolve.py writes is the one DVC tracks for the stage
            assert _keys(stage["params"]) == resolve.declared_keys(PROJECT_ROOT, name)
            assert f"{section}.{name}" in resolve.declared_keys(PROJECT_ROOT, name)
            # ... and the training depends on the file the values are written to
            for training in trainings:
                if training.split("@")[1].rsplit("-", 1)[0] == name:
                    assert f"compositions/{name}.json" in stages[training]["deps"]


def test_the_block_stages_declare_the_same_training_keys(stages) -> None:
    """The block stages keep their own list (their composition carries the remedies'
    entries): the same keys as a remedy's resolve stage, but the remedy's entry."""
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    remedy = next(iter(raw["remedies"]))
    shared = [k for k in resolve.declared_keys(PROJECT_ROOT, remedy) if k != f"remedies.{remedy}"]
    pipeline = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    assert _keys(pipeline["stages"]["train_block"]["do"]["params"]) == shared


def _project(tmp_path: Path) -> Path:
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def _resolve(root: Path, name: str) -> bytes:
    out = resolve.run(params_mod.load(root / "params.yaml"), name, Layout(root))
    return out.read_bytes()


def _edit(root: Path, section: str, key: str, value: object) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_the_composition_carries_the_declared_values(tmp_path: Path) -> None:
    root = _project(tmp_path)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    for name in (next(iter(raw["remedies"])), next(iter(raw["retrain"]))):
        written = json.loads(_resolve(root, name))
        assert written["remedy"] == name and written["code"]
        keys = resolve.declared_keys(root, name)
        assert sorted(written["params"]) == keys
        for key in keys:
            node = raw
            for part in key.split("."):
                node = node[part]
            assert written["params"][key] == node, key


def test_the_composition_changes_exactly_with_a_declared_value(tmp_path: Path) -> None:
    root = _project(tmp_path)
    name = next(iter(yaml.safe_load((root / "params.yaml").read_text())["remedies"]))
    first = _resolve(root, name)
    assert _resolve(root, name) == first  # deterministic bytes
    # keys no training number depends on: the same bytes, no training re-runs
    _edit(root, "train", "predict_batch_size", 7)
    _edit(root, "evaluate", "threshold_objective", "f1")
    assert _resolve(root, name) == first
    raw = yaml.safe_load((root / "params.yaml").read_text())
    _edit(root, "train", "max_steps", raw["train"]["max_steps"] * 2)
    assert _resolve(root, name) != first


def test_a_resolve_stage_declaring_another_params_file_is_one_user_error(tmp_path: Path) -> None:
    from imbalance.cli import UserError

    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    pipeline = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    pipeline["stages"]["resolve"]["do"]["params"].append({"other.yaml": ["lr"]})
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    assert "train.max_steps" in resolve.declared_keys(PROJECT_ROOT, "baseline")
    with pytest.raises(UserError, match=r"stage resolve: params from 'other.yaml' \(\['lr'\]\)"):
        resolve.declared_keys(tmp_path, "baseline")
