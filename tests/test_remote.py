"""A DVC remote, for real: push from one clone, pull into a fresh one, use the model.

The tiny project runs the pipeline (one seed, two remedies) with a local-directory DVC
remote committed in .dvc/config, commits and pushes. A fresh ``git clone`` has code,
params, dvc.lock and the git-tracked metrics but no data and no models; its committed
results pass the stale-results guard (imbalance.tools.lockcheck) with no data, as CI's
clean clone does, and the guard names exactly the training stages once the training
code changes. ``dvc pull`` then brings first only what the README's "Load a trained
model" pulls (one model, one seed's data), then everything; the pulled models, loaded the
README's way (``keras.models.load_model(..., compile=False)``, no project code), must
predict exactly what the pulled predictions files say for the test set.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import TinyProject, ok

from imbalance.tools import lockcheck

pytestmark = pytest.mark.slow

REMEDIES = ("baseline", "class_weight")


def test_push_then_pull_into_a_fresh_clone_and_load_a_model(
    tiny_project: TinyProject, tmp_path: Path
) -> None:
    lead = tiny_project
    p = lead.params()
    p["seeds"] = [0]
    p["remedies"] = {"baseline": {}, "class_weight": {"weights": {"kind": "balanced"}}}
    p["retrain"] = {}
    p["compare"]["also_against"] = []
    p["compare"]["reference"] = "baseline"
    (lead.root / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    storage = tmp_path / "dvc-storage"
    ok(lead.dvc("remote", "add", "-d", "storage", str(storage)))
    ok(lead.dvc("repro"))
    ok(lead.git("add", "-A"))
    ok(lead.git("commit", "-qm", "results, and a DVC remote"))
    pushed = ok(lead.dvc("push"))
    assert re.search(r"\d+ files? pushed", pushed), pushed

    clone = TinyProject(tmp_path / "clone", lead.source)
    ok(lead.run("git", "clone", "-q", str(lead.root), str(clone.root)))
    model_path = clone.root / "models" / "scratch" / "seed0" / "baseline.keras"
    assert not model_path.exists() and not (clone.root / "data" / "cifar2").exists()
    assert (clone.root / "metrics" / "remedies" / "baseline.json").is_file()  # in git: no pull
    assert lockcheck.check(clone.root).ok  # what CI's clean clone checks, with no data
    train = clone.root / "imbalance" / "training" / "train.py"
    original = train.read_text()
    train.write_text(original + "\n# changed\n")
    stale = lockcheck.check(clone.root)
    # the code is the resolve stage's dep; the trainings follow from their compositions
    assert [s.stage for s in stale.stale] == ["resolve"]
    assert stale.downstream == [*(f"train@{r}-0" for r in REMEDIES), "evaluate@0", "compare"]
    train.write_text(original)

    # The README's "Load a trained model": pull one model and one seed's data, nothing else.
    ok(clone.dvc("pull", "models/scratch/seed0/baseline.keras", "data/cifar2/seed0"))
    assert model_path.is_file() and not (clone.root / "data" / "raw").exists()
    assert not (clone.root / "models" / "scratch" / "seed0" / "class_weight.keras").exists()
    import keras

    model = keras.models.load_model(model_path, compile=False)
    test = np.load(clone.root / "data" / "cifar2" / "seed0" / "test.npz")
    x = test["x"].astype("float32") / 255
    first = model.predict(x, batch_size=2048, verbose=0)[:, 1]
    accuracy = ((first >= 0.5) == test["y"]).mean()  # the README's last line
    assert 0.0 <= accuracy <= 1.0

    ok(clone.dvc("pull"))  # everything else
    assert "up to date" in ok(clone.dvc("status")).lower()
    batch = p["train"]["predict_batch_size"]
    for remedy in REMEDIES:
        model = keras.models.load_model(
            clone.root / "models" / "scratch" / "seed0" / f"{remedy}.keras", compile=False
        )
        automobile = model.predict(x, batch_size=batch, verbose=0)[:, 1].astype(np.float32)
        pulled = np.load(clone.root / "predictions" / "seed0" / f"{remedy}.npz")["test"]
        assert automobile.shape == pulled.shape == (len(test["y"]),)
        np.testing.assert_array_equal(automobile, pulled, err_msg=remedy)
    shutil.rmtree(storage)
