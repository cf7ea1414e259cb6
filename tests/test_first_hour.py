"""A new user's first commands (issue 24): the first run off the development machines, and
predictions on one's own images (``./dev.sh predict``), in tiny projects."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from tests.conftest import PROJECT_ROOT, TWO_REMEDY_GRID, VENV_BIN, TinyProject, ok

OFFICIAL = "./dev.sh repro -S data.source=official"


def _dev_sh(project: TinyProject, *args: str):
    """``./dev.sh ARGS`` in the project, set up with this virtualenv (no install)."""
    shutil.copy2(PROJECT_ROOT / "dev.sh", project.root / "dev.sh")
    return project.run("env", f"VENV={VENV_BIN.parent}", "bash", "dev.sh", *args)


# ----------------------------------------------------------------------------- first command


def test_absent_default_source_names_the_official_command(tiny_project: TinyProject) -> None:
    """A clone without ../shared: fetch's one line names the command that works."""
    tiny_project.set_params({"data.sources.tiny.location": "../shared/data/nowhere.tar.gz"})
    result = tiny_project.stage("fetch")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: data.sources.tiny.location: ../shared/data/nowhere")
    assert lines[0].endswith(OFFICIAL)
    assert not (tiny_project.root / "data" / "raw").exists()


@pytest.mark.slow
def test_the_named_command_runs_the_official_entry(
    tiny_project: TinyProject, make_python_archive, tmp_path: Path
) -> None:
    """The command the error names, run as printed, fetches the `official` entry (here a
    local fake of the official archive: no network in tests)."""
    archive = make_python_archive(tmp_path / "cifar-10-python.tar.gz", 4, 2)
    tiny_project.set_params(
        {
            "data.sources.tiny.location": "../shared/data/nowhere.tar.gz",
            "data.sources.official": {"location": str(archive.path), "sha256": archive.sha256},
        }
    )
    ok(tiny_project.git("commit", "-qam", "no shared copy here"))
    first = _dev_sh(tiny_project, "repro", "fetch")
    assert first.returncode != 0
    command = re.search(r"instead: (\./dev\.sh .*)$", first.stderr, re.M)
    assert command and command.group(1) == OFFICIAL, first.stderr
    ok(_dev_sh(tiny_project, *command.group(1).split()[1:], "fetch"))
    manifest = (tiny_project.root / "data" / "raw" / "manifest.json").read_text()
    assert str(archive.path) in manifest and '"kind": "cifar10-python"' in manifest


# ----------------------------------------------------------------------------- predict


def _jpeg_224(path: Path, rgb: tuple[int, int, int]) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(0, 30, (224, 224, 3)) + rgb, 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def _predict(project: TinyProject, *args: str):
    return project.run(VENV_BIN / "python", "-m", "imbalance.training.predict", *args)


def _line(out: str, image: Path) -> tuple[str, float, float]:
    match = re.search(
        rf"^{re.escape(str(image))}: (\w+) \(score ([\d.]+), threshold ([\d.]+)\)$", out, re.M
    )
    assert match, out
    return match.group(1), float(match.group(2)), float(match.group(3))


@pytest.mark.slow
def test_predict_trains_once_then_uses_the_model(tiny_project: TinyProject, tmp_path: Path) -> None:
    tiny_project.set_params(TWO_REMEDY_GRID)
    ok(tiny_project.git("commit", "-qam", "two remedies"))
    car = _jpeg_224(tmp_path / "car.jpg", (190, 70, 60))

    first = _predict(tiny_project, str(car), "--remedy", "baseline", "--seed", "1")
    ok(first)
    assert "training that one run with `dvc repro train@baseline-1`" in first.stdout
    label, score, threshold = _line(first.stdout, car)
    assert 0.0 <= score <= 1.0 and label == ("automobile" if score >= threshold else "airplane")

    # The default threshold is the run's tuned one: it maximises balanced accuracy on the
    # run's validation scores (checked with scikit-learn, not with the project's code).
    root = tiny_project.root
    y_val = np.load(root / "data/cifar2/seed1/val_imbalanced.npz")["y"]
    p_val = np.load(root / "predictions/seed1/baseline.npz")["val"]
    best = max(balanced_accuracy_score(y_val, p_val >= t) for t in np.unique(p_val))
    assert balanced_accuracy_score(y_val, p_val >= threshold) == pytest.approx(best)

    again = ok(
        _predict(
            tiny_project, str(car), "--remedy", "baseline", "--seed", "1", "--threshold", "0.5"
        )
    )
    assert "(workspace)" in again and "dvc repro" not in again
    label2, score2, threshold2 = _line(again, car)
    assert (score2, threshold2) == (score, 0.5)
    assert label2 == ("automobile" if score >= 0.5 else "airplane")

    (root / "models/scratch/seed1/baseline.keras").unlink()
    cached = ok(_predict(tiny_project, str(car), "--remedy", "baseline", "--seed", "1"))
    assert "(DVC cache)" in cached and _line(cached, car) == (label, score, threshold)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["{bad}", "--remedy", "baseline"], "not an image Pillow can read"),
        (["{good}", "--remedy", "nope"], "unknown remedy 'nope'"),
        (["{good}", "--remedy", "baseline", "--threshold", "1.5"], "--threshold 1.5 is not in"),
        (["{good}", "--remedy", "baseline", "--seed", "7"], "--seed 7 is not in"),
    ],
)
def test_predict_bad_input_is_one_line(
    tiny_project: TinyProject, tmp_path: Path, args: list[str], expected: str
) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    good = _jpeg_224(tmp_path / "car.jpg", (190, 70, 60))
    result = _predict(tiny_project, *(a.format(bad=bad, good=good) for a in args))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tiny_project.root / "models").exists()  # nothing trained or fetched


# ----------------------------------------------------------------------------- review views

# The recipe of docs/reviewing.md, word for word (a test below runs it).
EXP_SHOW_RECIPE = (
    "dvc exp show --csv --drop '.*' "
    "--keep 'Experiment|rev|.*/(baseline|balanced|oversample_augment)\\.json:roc_auc' "
    "| sed 's#metrics/remedies/##g; s#\\.json:roc_auc##g' | column -s, -t"
)


def test_exp_show_recipe_fits_80_columns(tiny_project: TinyProject) -> None:
    """The docs' `dvc exp show` recipe, run by a real DVC on declared metrics, fits 80
    columns and shows the values asked for."""
    assert EXP_SHOW_RECIPE in (PROJECT_ROOT / "docs" / "reviewing.md").read_text()
    shutil.which("column") or pytest.skip("no `column` (util-linux) on this machine")
    remedies = tiny_project.root / "metrics" / "remedies"
    remedies.mkdir(parents=True)
    values = {"baseline": 0.8328, "balanced": 0.9884, "oversample_augment": 0.934}
    for name, auc in values.items():
        (remedies / f"{name}.json").write_text(f'{{"roc_auc": {auc}, "recall": 0.5}}\n')
    ok(tiny_project.git("add", "-A"))
    ok(tiny_project.git("commit", "-qm", "metrics"))
    out = ok(tiny_project.run("bash", "-c", EXP_SHOW_RECIPE))
    lines = out.strip().splitlines()
    assert lines[0].split() == ["Experiment", "rev", "balanced", "baseline", "oversample_augment"]
    assert lines[1].split() == ["workspace", "0.9884", "0.8328", "0.934"]
    assert max(len(line) for line in lines) <= 80, lines


def test_review_outputs_are_git_ignored(tmp_path: Path) -> None:
    """report.md, its plots folder and dvc_plots/ never count as untracked inputs (which
    make `./dev.sh repro --jobs N` refuse to start)."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy2(PROJECT_ROOT / ".gitignore", root / ".gitignore")
    for path in ("report.md", "report.plots/static/a.png", "dvc_plots/index.html", "new.py"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")
    project = TinyProject(root, root)
    ok(project.git("init", "-q"))
    untracked = ok(project.git("status", "--porcelain", "--untracked-files=all")).split()
    assert "new.py" in untracked  # the check can fail
    assert not {"report.md", "report.plots/static/a.png", "dvc_plots/index.html"} & set(untracked)
