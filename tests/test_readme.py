"""The README's results section is generated, never hand-typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from imbalance.cli import UserError
from imbalance.tools.readme import END, START, render

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
    assert render(readme, comparison.read_text()) == readme, (
        "run `python -m imbalance.tools.readme`"
    )
