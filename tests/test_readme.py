"""The README's results section is generated, never hand-typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from imbalance.cli import UserError
from imbalance.tools.readme import END, START, render, summary

ROOT = Path(__file__).resolve().parents[1]


def test_render_replaces_only_the_marked_section() -> None:
    readme = f"# Title\n\nintro\n\n{START}\nold numbers\n{END}\n\n## After\n"
    out = render(readme, "# Comparison\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "old numbers" not in out
    assert "## Comparison" in out and "| 1 | 2 |" in out
    assert out.startswith("# Title\n\nintro\n\n") and out.endswith("\n\n## After\n")
    assert render(out, "# Comparison\n\nnew\n").count(START) == 1


def test_render_refuses_a_readme_without_markers() -> None:
    with pytest.raises(UserError, match="marker"):
        render("# no markers\n", "x")


def test_committed_readme_matches_committed_comparison() -> None:
    comparison = ROOT / "metrics" / "comparison.md"
    # a deleted report must fail here (and in the results guard), not pass as a skip
    assert comparison.is_file(), f"{comparison} is missing: run `dvc repro` and commit it"
    readme = (ROOT / "README.md").read_text()
    assert render(readme, summary(comparison.read_text())) == readme, (
        "run `python -m imbalance.tools.readme`"
    )


def test_summary_is_the_title_and_summary_list_only() -> None:
    comparison = (
        "# Study\n\nGenerated.\n\n**Summary.**\n\n- best: `x` 0.9\n- ceiling: `y`\n\n"
        "- **Data**: long\n\n## Test metrics\n\n| a |\n"
    )
    out = summary(comparison)
    assert out.startswith("# Study\n\n- best: `x` 0.9\n- ceiling: `y`\n\n")
    assert "long" not in out and "Test metrics" not in out and "metrics/comparison.md" in out
    with pytest.raises(UserError, match="Summary"):
        summary("# Study\n\nno summary\n")


def test_readme_is_a_front_page() -> None:
    """Issue 24: at most 12,000 characters, the two commands first."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme) <= 12_000, len(readme)
    quick = readme.index("## Quick start")
    assert readme.index("./dev.sh repro", quick) < readme.index("./dev.sh test", quick)
    assert "./dev.sh repro -S data.source=official" in readme
