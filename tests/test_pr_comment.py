"""The pull request's results comment (imbalance.tools.pr_comment).

Rendered for the two real results commits, ff3ab05 (3 seeds) -> 4a03f17 (5 seeds), from
copies of their metrics files under tests/fixtures/results/ (CI may have a shallow clone
without those commits; when the commits are there, reading them from git must give the
same comment). Synthetic sides cover the rest: a remedy on one side only, summary.json
without statistics, a stale lock, and the size cap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, ok, tool_env

from imbalance.tools import pr_comment
from imbalance.tools.pr_comment import MAX_CHARS, read_results, render

FIXTURES = Path(__file__).parent / "fixtures" / "results"
BASE, HEAD = "ff3ab05", "4a03f17"
REMEDIES = 16


def _comment(base: str, head: str, **kw: str) -> str:
    return render(read_results(base, PROJECT_ROOT), read_results(head, PROJECT_ROOT), **kw)


def _row(text: str, remedy: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| `{remedy}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_two_results_commits() -> None:
    text = _comment(str(FIXTURES / BASE), str(FIXTURES / HEAD))
    assert len(text) < MAX_CHARS
    assert text.count("\n| `") == REMEDIES  # one row per remedy
    assert f"## Results: `{BASE}` \u2192 `{HEAD}`" in text
    assert "| seeds | 3 (0, 1, 2) | 5 (0, 1, 2, 3, 4) |" in text
    assert "`../shared/data/cifar10-jpeg.tar.gz` (image-folder, not the official archive)" in text
    assert "the seeds differ" in text and "data sources differ" not in text
    # statistics.json: baseline test.roc_auc 0.737652 -> 0.78541, head interval
    # [0.662, 0.909] (half-width 0.124): the +0.048 is inside it, so noise
    assert _row(text, "baseline")[:3] == [
        "`baseline`",
        "0.738 \u2192 0.785 \u00b10.124",
        "+0.048 *noise*",
    ]
    assert _row(text, "class_weight")[3:5] == ["0.786 \u2192 0.607 \u00b10.425", "-0.179 *noise*"]


def test_git_revisions_of_a_tiny_history_give_the_directories_comment(tmp_path: Path) -> None:
    """Reading a side from git (``git show <rev>:metrics/...``, ``<rev>:params.yaml``) in
    a repository this test builds: the two fixture sides committed one after the other.
    Runs on any clone, shallow or not."""
    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)

    def git(*args: str) -> str:
        cmd = ["git", *args]
        return ok(subprocess.run(cmd, cwd=repo, env=tool_env(), capture_output=True, text=True))

    git("init", "-q")
    shas = []
    for side in (BASE, HEAD):
        for file in (FIXTURES / side / "metrics").iterdir():
            (repo / "metrics" / file.name).write_bytes(file.read_bytes())
        (repo / "params.yaml").write_bytes((FIXTURES / side / "params.yaml").read_bytes())
        git("add", "-A")
        git("commit", "-qm", side)
        shas.append(git("rev-parse", "--short", "HEAD").strip())
    from_git = render(read_results(shas[0], repo), read_results(shas[1], repo))
    from_dirs = _comment(str(FIXTURES / BASE), str(FIXTURES / HEAD))
    assert f"`{shas[0]}` \u2192 `{shas[1]}`" in from_git
    assert from_git.replace(shas[0], BASE).replace(shas[1], HEAD) == from_dirs


@pytest.mark.skipif(
    subprocess.run(
        ["git", "cat-file", "-e", f"{BASE}^{{commit}}"], cwd=PROJECT_ROOT, capture_output=True
    ).returncode
    != 0
    or subprocess.run(
        ["git", "cat-file", "-e", f"{HEAD}^{{commit}}"], cwd=PROJECT_ROOT, capture_output=True
    ).returncode
    != 0,
    reason="shallow clone: the results commits are not available",
)
def test_git_revisions_and_fixture_directories_give_the_same_comment() -> None:
    from_git = _comment(BASE, HEAD)
    from_dirs = _comment(str(FIXTURES / BASE), str(FIXTURES / HEAD))
    # the labels differ only when the revisions are not given as short shas
    assert from_git == from_dirs


def _side(
    root: Path, remedies: dict[str, dict[str, tuple[float, float, float]]], **top: object
) -> Path:
    """A directory with metrics/statistics.json: ``{remedy: {key: (mean, low, high)}}``."""
    (root / "metrics").mkdir(parents=True)
    stats = {
        "seeds": top.get("seeds", [0, 1, 2]),
        "remedies": {
            remedy: {
                key: {"mean": m, "ci_low": lo, "ci_high": hi} for key, (m, lo, hi) in cells.items()
            }
            for remedy, cells in remedies.items()
        },
    }
    (root / "metrics" / "statistics.json").write_text(json.dumps(stats))
    return root


def test_remedies_on_one_side_only_and_real_changes(tmp_path: Path) -> None:
    cell = {"test.roc_auc": (0.80, 0.78, 0.82), "test.recall": (0.5, 0.4, 0.6)}
    base = _side(tmp_path / "base", {"baseline": cell, "old_remedy": cell})
    head = _side(
        tmp_path / "head",
        {
            "baseline": {"test.roc_auc": (0.90, 0.88, 0.92), "test.recall": (0.55, 0.4, 0.7)},
            "new_remedy": cell,
        },
    )
    text = render(read_results(str(base)), read_results(str(head)))
    baseline = _row(text, "baseline")
    assert baseline[1:5] == [
        "0.800 \u2192 0.900 \u00b10.020",
        "**+0.100**",  # outside head's +-0.02: a finding
        "0.500 \u2192 0.550 \u00b10.150",
        "+0.050 *noise*",
    ]
    assert baseline[5:] == ["", ""]  # tuned balanced accuracy absent on both sides
    assert _row(text, "new_remedy")[1:3] == ["\u2014 \u2192 0.800 \u00b10.020", "new"]
    assert _row(text, "old_remedy")[1:3] == ["0.800 \u2192 \u2014", "removed"]
    assert "seeds differ" not in text


def test_summary_json_alone_gives_means_without_noise_marks(tmp_path: Path) -> None:
    for side, auc in (("base", 0.7), ("head", 0.75)):
        (tmp_path / side / "metrics").mkdir(parents=True)
        summary = {"baseline": {"roc_auc": auc, "recall": 0.0, "n_seeds": 1, "tuned": {}}}
        (tmp_path / side / "metrics" / "summary.json").write_text(json.dumps(summary))
    text = render(read_results(str(tmp_path / "base")), read_results(str(tmp_path / "head")))
    assert _row(text, "baseline")[1:5] == [
        "0.700 \u2192 0.750",
        "+0.050",
        "0.000 \u2192 0.000",
        "0.000",
    ]
    assert "| seeds | 1 | 1 |" in text
    assert "| data source | unknown | unknown |" in text


def test_a_stale_lock_of_head_is_shown(tmp_path: Path) -> None:
    stale = "dvc.lock does not match the workspace: ...\n  train@* (60 stages): changed x.py\n"
    text = _comment(str(FIXTURES / BASE), str(FIXTURES / HEAD), lockcheck=stale)
    assert "head's dvc.lock does not match" in text
    assert "train@* (60 stages): changed x.py" in text
    current = "dvc.lock matches the workspace's code and params: the results are current.\n"
    assert "dvc.lock" not in _comment(str(FIXTURES / BASE), str(FIXTURES / HEAD), lockcheck=current)


def test_many_remedies_are_cut_to_fit_a_comment(tmp_path: Path) -> None:
    cell = {"test.roc_auc": (0.8, 0.7, 0.9)}
    many = {f"remedy_{i:04d}_with_a_long_name": cell for i in range(2000)}
    text = render(
        read_results(str(_side(tmp_path / "b", many))),
        read_results(str(_side(tmp_path / "h", many))),
    )
    assert len(text) < MAX_CHARS
    assert "more rows cut to fit a comment" in text


def test_cli_writes_the_comment_and_reports_errors_in_one_line(tmp_path: Path) -> None:
    env = {**tool_env(), "PYTHONPATH": str(PROJECT_ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "imbalance.tools.pr_comment", *args]
        return subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)

    out = tmp_path / "comment.md"
    done = cli(str(FIXTURES / BASE), str(FIXTURES / HEAD), str(out), "--footer", "Full report: x")
    assert done.returncode == 0, done.stderr
    assert out.read_text().rstrip().endswith("Full report: x")
    bad = cli("no-such-revision", str(FIXTURES / HEAD), str(tmp_path / "x.md"))
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: no-such-revision: ")
    assert len(bad.stderr.splitlines()) == 1
    assert not (tmp_path / "x.md").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    none = cli(str(empty), str(empty), str(tmp_path / "y.md"))
    assert none.returncode == 2 and "neither has" in none.stderr


def test_module_names_its_metrics() -> None:
    """The comment's three metrics exist in both results commits' statistics."""
    for rev in (BASE, HEAD):
        stats = json.loads((FIXTURES / rev / "metrics" / "statistics.json").read_text())
        for key, _, _ in pr_comment.METRICS:
            assert all(key in cells for cells in stats["remedies"].values()), (rev, key)


# ------------------------------------------------------------------- params changed


def _params(root: Path, text: str) -> None:
    (root / "params.yaml").write_text(text)


BASE_PARAMS = """\
seeds: [0, 1, 2]
train:
  batch_size: 64
  early_stopping:
    patience: 10
remedies:
  baseline: {}
  old: {sampler: oversample}
"""
HEAD_PARAMS = """\
seeds: [0, 1, 2, 3, 4]
train:
  batch_size: 64
  early_stopping:
    patience: 20
remedies:
  baseline: {}
  new: {weights: {kind: balanced}}
"""


def _section(text: str) -> list[str]:
    """The rows of the params table (between its header and the next blank line)."""
    lines = text.splitlines()
    first = lines.index("| param | base | head |") + 2
    return lines[first : lines.index("", first)]


def test_the_params_that_changed_are_listed_base_to_head(tmp_path: Path) -> None:
    cell = {"test.roc_auc": (0.8, 0.7, 0.9)}
    base, head = _side(tmp_path / "b", {"x": cell}), _side(tmp_path / "h", {"x": cell})
    _params(base, BASE_PARAMS)
    _params(head, HEAD_PARAMS)
    text = render(read_results(str(base)), read_results(str(head)))
    assert "**Params changed** (4, params.yaml base \u2192 head; \u2014 = absent):" in text
    # head's order, then keys only base has; unchanged ones (batch_size, baseline) omitted
    assert _section(text) == [
        "| `seeds` | `[0, 1, 2]` | `[0, 1, 2, 3, 4]` |",
        "| `train.early_stopping.patience` | `10` | `20` |",
        "| `remedies.new.weights.kind` | \u2014 | `balanced` |",
        "| `remedies.old.sampler` | `oversample` | \u2014 |",
    ]
    assert text.index("**Params changed**") < text.index("| remedy |")  # before the moves


def test_params_of_git_revisions_and_missing_or_equal_params(tmp_path: Path) -> None:
    env = {
        **tool_env(),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    _side(tmp_path, {"x": {"test.roc_auc": (0.8, 0.7, 0.9)}})
    git("init", "-q")
    _params(tmp_path, BASE_PARAMS)
    git("add", ".")
    git("commit", "-qm", "base")
    _params(tmp_path, HEAD_PARAMS.replace("patience: 20", "patience: 10"))
    git("commit", "-qam", "head")
    text = render(read_results("HEAD~1", tmp_path), read_results("HEAD", tmp_path))
    assert "| `train.early_stopping.patience` |" not in text
    assert "| `seeds` | `[0, 1, 2]` | `[0, 1, 2, 3, 4]` |" in _section(text)
    same = render(read_results("HEAD", tmp_path), read_results("HEAD", tmp_path))
    assert "**Params**: params.yaml is the same on both sides." in same
    # the two results commits' fixtures: the same params, so nothing to list
    fixtures = _comment(str(FIXTURES / BASE), str(FIXTURES / HEAD))
    assert "**Params**: params.yaml is the same on both sides." in fixtures
    bare = tmp_path / "bare"
    _side(bare, {"x": {"test.roc_auc": (0.8, 0.7, 0.9)}})
    text = render(read_results(str(bare)), read_results("HEAD", tmp_path))
    assert "**Params**: no params.yaml on `bare`; changes not shown." in text


def test_many_changed_params_are_cut_and_values_escaped(tmp_path: Path) -> None:
    cell = {"test.roc_auc": (0.8, 0.7, 0.9)}
    base, head = _side(tmp_path / "b", {"x": cell}), _side(tmp_path / "h", {"x": cell})
    _params(base, "".join(f"p{i:03d}: 1\n" for i in range(100)) + "s: a\n")
    _params(head, "".join(f"p{i:03d}: 2\n" for i in range(100)) + "s: 'a|b'\n")
    text = render(read_results(str(base)), read_results(str(head)))
    rows = _section(text)
    assert len(rows) == pr_comment.MAX_PARAMS + 1
    assert rows[-1] == f"| \u2026 {101 - pr_comment.MAX_PARAMS} more (`dvc params diff`) | | |"
    assert rows[0] == "| `p000` | `1` | `2` |"
    changes = pr_comment.params_changes({"s": "a"}, {"s": "a|b"})
    assert pr_comment._param_value(changes[0][2]) == "`a\\|b`"  # a pipe would split the cell


def test_a_metric_defined_on_some_seeds_says_on_how_many(tmp_path: Path) -> None:
    for side, mean in (("b", 0.5), ("h", 0.6)):
        (tmp_path / side / "metrics").mkdir(parents=True)
        cells = {
            "test.roc_auc": {"mean": 0.8, "ci_low": 0.7, "ci_high": 0.9, "n": 5},
            "test.recall": {"mean": mean, "ci_low": 0.4, "ci_high": 0.8, "n": 3},
        }
        stats = {"seeds": [0, 1, 2, 3, 4], "remedies": {"x": cells}}
        (tmp_path / side / "metrics" / "statistics.json").write_text(json.dumps(stats))
    text = render(read_results(str(tmp_path / "b")), read_results(str(tmp_path / "h")))
    assert _row(text, "x")[1:5] == [
        "0.800 \u2192 0.800 \u00b10.100",  # defined on all 5: no count
        "0.000 *noise*",
        "0.500 (3 of 5 seeds) \u2192 0.600 \u00b10.200 (3 of 5 seeds)",
        "+0.100 *noise*",
    ]


def test_a_remedy_of_a_seed_block_is_counted_on_its_own_seeds(tmp_path: Path) -> None:
    """With sequential blocks `seeds` holds every seed and `seeds_by_remedy` each remedy's:
    a remedy defined on all of its own 3 seeds says no count, though 5 seeds exist."""
    (tmp_path / "h" / "metrics").mkdir(parents=True)
    cells = {
        "test.roc_auc": {"mean": 0.8, "ci_low": 0.7, "ci_high": 0.9, "n": 3},
        "test.recall": {"mean": 0.6, "ci_low": 0.4, "ci_high": 0.8, "n": 2},
    }
    stats = {
        "seeds": [0, 1, 2, 3, 4],
        "seeds_by_remedy": {"x": [0, 1, 2], "y": [0, 1, 2, 3, 4]},
        "remedies": {"x": cells},
    }
    (tmp_path / "h" / "metrics" / "statistics.json").write_text(json.dumps(stats))
    head = read_results(str(tmp_path / "h"))
    assert head.remedies["x"]["test.roc_auc"].defined == ""
    assert head.remedies["x"]["test.recall"].defined == " (2 of 3 seeds)"
