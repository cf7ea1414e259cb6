"""The PR report command, for real: a temporary git + DVC repository with two commits whose
params and metrics differ, then ``python -m imbalance.tools.report HEAD~1 report.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

STAGE = """\
import json, os, sys
import yaml
p = yaml.safe_load(open("params.yaml"))["train"]
os.makedirs("metrics", exist_ok=True)
os.makedirs("plots", exist_ok=True)
auc = round(0.5 + p["learning_rate"], 4)
json.dump({"baseline": {"roc_auc": auc, "recall": 0.1}, "class_weight": {"roc_auc": 0.9,
           "recall": round(0.6 + p["learning_rate"], 4)}}, open("metrics/summary.json", "w"))
json.dump({"roc": [{"fpr": 0, "tpr": 0}, {"fpr": 0.5, "tpr": auc}, {"fpr": 1, "tpr": 1}]},
          open("plots/roc.json", "w"))
open("metrics/comparison.md", "w").write("# Comparative study\\n\\n| remedy | AUC |\\n|---|---|\\n"
                                          f"| baseline | {auc} |\\n")
"""

DVC_YAML = """\
stages:
  study:
    cmd: python study.py
    deps: [study.py]
    params: [train.learning_rate]
    outs:
      - plots/roc.json:
          cache: false
      - metrics/comparison.md:
          cache: false
    metrics:
      - metrics/summary.json:
          cache: false
plots:
  - plots/roc.json:
      x: fpr
      y: tpr
"""


def _run(cmd: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def _commit(repo: Path, lr: float, message: str) -> None:
    (repo / "params.yaml").write_text(f"train:\n  learning_rate: {lr}\n")
    _run([sys.executable, "-m", "dvc", "repro", "-q"], repo, check=True)
    _run(["git", "add", "-A"], repo, check=True)
    _run(["git", "commit", "-qm", message], repo, check=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "repo"
    path.mkdir()
    (path / "study.py").write_text(STAGE)
    (path / "dvc.yaml").write_text(DVC_YAML)
    _run(["git", "init", "-q"], path, check=True)
    _run([sys.executable, "-m", "dvc", "init", "-q"], path, check=True)
    _commit(path, 0.1, "first")
    _commit(path, 0.3, "second: higher learning rate")
    return path


def test_report_shows_metric_param_and_plot_changes(repo: Path) -> None:
    proc = _run([sys.executable, "-m", "imbalance.tools.report", "HEAD~1", "out/report.md"], repo)
    assert proc.returncode == 0, proc.stderr
    text = (repo / "out" / "report.md").read_text()
    metrics = text.split("## Metrics")[1].split("## Params")[0]
    assert "baseline.roc_auc" in metrics and "0.6" in metrics and "0.8" in metrics
    assert "class_weight.recall" in metrics and "0.7" in metrics and "0.9" in metrics
    assert "baseline.recall" not in metrics  # unchanged values are not listed
    params = text.split("## Params")[1].split("## Plots")[0]
    assert "train.learning_rate" in params and "0.1" in params and "0.3" in params
    assert (repo / "out" / "report.plots" / "index.html").is_file()
    assert "report.plots/index.html" in text
    html = (repo / "out" / "report.plots" / "index.html").read_text()
    assert "HEAD~1" in html and "workspace" in html  # both revisions plotted
    assert "### Comparative study" in text  # comparison.md embedded, headings demoted


def test_report_with_no_change_says_so(repo: Path) -> None:
    proc = _run([sys.executable, "-m", "imbalance.tools.report", "HEAD", "same.md"], repo)
    assert proc.returncode == 0, proc.stderr
    text = (repo / "same.md").read_text()
    assert "No declared metric changed." in text
    assert "No param changed." in text


def test_report_unknown_base_is_one_error_line(repo: Path) -> None:
    proc = _run([sys.executable, "-m", "imbalance.tools.report", "no-such-rev", "x.md"], repo)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: `dvc metrics diff no-such-rev")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (repo / "x.md").exists()
