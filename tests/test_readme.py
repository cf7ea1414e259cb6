"""The README's results block is generated from the compare stage's outputs, never typed."""

from __future__ import annotations

import json
import math
import re
import statistics as pystats
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_compare import HELD, STUDY, check, make_params, make_runs

from imbalance.analysis import compare
from imbalance.cli import UserError
from imbalance.tools.readme import END, START, block, data_line, render

ROOT = Path(__file__).resolve().parents[1]
T_975_DF2 = 4.302652729911275  # Student t quantile 0.975, 2 degrees of freedom (tables)
SEEDS = [0, 1, 2]
# recall per seed; AUC per seed (HELD's report remedies, the ceiling, one past the report)
TABLE = {
    **HELD,
    "balanced": ([0.95, 0.96, 0.94], [0.99, 0.98, 0.99]),
    "oversample_augment": ([0.50, 0.50, 0.50], [0.93, 0.94, 0.95]),
}


def by_hand(values: list[float]) -> str:
    """mean [low, high], the 95% t-interval over three seeds cut to [0, 1]."""
    mean = pystats.mean(values)
    half = T_975_DF2 * pystats.stdev(values) / math.sqrt(len(values))
    return f"{mean:.3f} [{max(mean - half, 0):.3f}, {min(mean + half, 1):.3f}]"


def tuned_balanced_accuracy(recalls: list[float]) -> list[float]:
    """test_compare.run_file's runs: tp = round(recall x 100) positives, 95 of 100
    negatives right; the tuned threshold's test metrics are the same as at 0.5."""
    return [(round(r * 100) / 100 + 0.95) / 2 for r in recalls]


@pytest.fixture(scope="module")
def study() -> tuple[dict[str, Any], str]:
    """statistics.json and comparison.md as the compare stage writes them, on tiny data."""
    params = make_params(
        SEEDS,
        remedies={
            "balanced": {"train_set": "balanced"},
            **STUDY,
            "oversample_augment": {"sampler": "oversample", "augment": {"flip": True}},
        },
        also_against=["oversample_augment"],
    )
    runs = make_runs(TABLE, SEEDS)
    st = compare.statistics(params, runs)
    questions = check(params, runs)
    st["could_be_best"] = compare.recommendation(params, runs, st, questions)
    manifest = {"source": "x.tar.gz", "sha256": "ab" * 32, "kind": "image-folder"}
    md = compare.comparison_markdown(params, st, runs, manifest, questions)
    # through JSON, as run_compare writes it and the README tool reads it
    return json.loads(json.dumps({**st, "questions": questions})), md


def table_rows(text: str) -> dict[str, list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return {r.split("`")[1]: [c.strip() for c in r.strip("|").split("|")] for r in rows}


def test_table_rows_cells_and_roles(study: tuple[dict[str, Any], str]) -> None:
    st, md = study
    rows = table_rows(block(st, data_line(md)))
    report = ["baseline", "class_weight", "oversample", "undersample"]
    report += ["two_phase_oversample", "two_phase_undersample"]
    # the report's remedies in the questions' order, then the rest; each remedy once
    assert list(rows)[:6] == report
    assert list(rows)[6:] == ["oversample_augment", "balanced"]
    for remedy, (recalls, aucs) in TABLE.items():
        if remedy not in rows:
            continue
        assert rows[remedy][2] == "3"
        assert rows[remedy][3] == by_hand(aucs), remedy
        assert rows[remedy][4] == by_hand(tuned_balanced_accuracy(recalls)), remedy
    assert rows["baseline"][3] == "0.800 [0.750, 0.850]"  # the hand arithmetic, spelled out
    assert rows["balanced"][3] == "0.987 [0.972, 1.000]"  # cut to the metric's range
    assert rows["baseline"][1] == "report, reference"
    assert rows["balanced"][1] == "ceiling (balanced training set)"
    # highest mean AUC outside the ceiling: 0.94 (oversample_augment) vs at most 0.90
    assert "best mean test ROC AUC" in rows["oversample_augment"][1]
    assert "also compared against" in rows["oversample_augment"][1]
    recommended = st["could_be_best"]["recommended"]
    assert "**recommended**" in rows[recommended][1]
    assert sum("recommended" in r[1] for r in rows.values()) == 1


def test_questions_could_be_best_and_data(study: tuple[dict[str, Any], str]) -> None:
    st, md = study
    text = block(st, data_line(md))
    assert text.startswith("Data: an image-folder copy of CIFAR-10 — **NOT the official")
    assert "SHA-256 `" + "ab" * 32 + "`). Means over seeds with 95% Student-t" in text
    for q in st["questions"]:
        line = f"- ({q['id']}) {q['claim']} *{q['verdict']}* ({q['n']} seeds)"
        assert line in text.splitlines()
    rec = st["could_be_best"]
    (cbb,) = [line for line in text.splitlines() if line.startswith("Could be the best")]
    assert all(f"`{r}`" in cbb for r in rec["members"])
    assert f"**Use `{rec['recommended']}`**: highest mean balanced accuracy" in cbb
    assert "`balanced`" not in cbb  # the ceiling is never a candidate


def test_older_statistics_and_a_report_without_data_line_are_refused(
    study: tuple[dict[str, Any], str],
) -> None:
    st, _ = study
    old = {k: v for k, v in st.items() if k not in ("questions", "could_be_best")}
    with pytest.raises(UserError, match="older compare stage"):
        block(old, "x")
    with pytest.raises(UserError, match="Data"):
        data_line("# Study\n\nno data line\n")


def test_render_replaces_only_the_marked_section() -> None:
    readme = f"# Title\n\nintro\n\n{START}\nold numbers\n{END}\n\n## After\n"
    out = render(readme, "| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "old numbers" not in out and "| 1 | 2 |" in out
    assert out.startswith("# Title\n\nintro\n\n") and out.endswith("\n\n## After\n")
    assert render(out, "new\n").count(START) == 1


def test_render_refuses_a_readme_without_markers() -> None:
    with pytest.raises(UserError, match="marker"):
        render("# no markers\n", "x")


def test_committed_readme_matches_committed_metrics() -> None:
    stats, comparison = ROOT / "metrics" / "statistics.json", ROOT / "metrics" / "comparison.md"
    # a deleted report must fail here (and in the results guard), not pass as a skip
    for path in (stats, comparison):
        assert path.is_file(), f"{path} is missing: run `dvc repro` and commit it"
    readme = (ROOT / "README.md").read_text()
    text = block(json.loads(stats.read_text()), data_line(comparison.read_text()))
    assert render(readme, text) == readme, "run `python -m imbalance.tools.readme`"


def test_readme_is_a_front_page() -> None:
    """Issue 24: at most 12,000 characters, the two commands first, the official archive."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme) <= 12_000, len(readme)
    quick = readme.index("## Quick start")
    first_block = readme.index("```", quick)
    assert readme.index("./dev.sh repro", quick) < readme.index("./dev.sh test", quick)
    assert readme.index("./dev.sh test", quick) < readme.index("## Results")
    assert readme.index("./dev.sh repro", quick) < readme.index("```", first_block + 3)
    assert "./dev.sh repro -S data.source=official" in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link


def test_predict_defaults_to_the_committed_recommendation() -> None:
    """`./dev.sh predict` without --remedy uses the remedy the committed report says to use."""
    stats = json.loads((ROOT / "metrics" / "statistics.json").read_text())
    predict = yaml.safe_load((ROOT / "params.yaml").read_text())["predict"]
    assert predict["remedy"] == stats["could_be_best"]["recommended"], (
        "set params.yaml predict.remedy to metrics/statistics.json could_be_best.recommended"
    )
