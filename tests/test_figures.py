"""The comparison's figures read at a glance (issue 24): the forest plot, the ROC figure's
choice of curves, training curves over all seeds. Figures are captured, not written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from imbalance.analysis import compare, figures
from tests.test_compare import HELD, _Captured, make_params, make_runs

SEEDS = [0, 1, 2]


def _stats():
    params = make_params(SEEDS)
    return params, compare.statistics(params, make_runs(HELD, SEEDS))


def test_forest_ranks_paired_differences_and_marks_the_could_be_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captured = _Captured()
    monkeypatch.setattr(figures, "_save", captured)
    params, st = _stats()
    figures.forest(params, st, ["class_weight", "oversample"], Path("unused.png"))
    ax = captured.figs[0].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    names = [label.split()[0] for label in labels]
    assert "baseline" not in names  # the reference is the 0 line, not a row
    # The difference each row shows, from scipy: mean of the per-seed AUC differences.
    aucs = {r: np.array(a) for r, (_, a) in HELD.items()}
    diffs = {r: float(np.mean(aucs[r] - aucs["baseline"])) for r in names}
    assert [diffs[n] for n in names] == sorted(diffs.values(), reverse=True)  # ranked
    d = aucs["oversample"] - aucs["baseline"]
    half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    row = names.index("oversample")
    segments = [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [row, row]]
    lo, hi = sorted(segments[0].get_xdata())
    assert lo == pytest.approx(max(d.mean() - half, -1)) and hi == pytest.approx(d.mean() + half)
    marked = {n for n, label in zip(names, labels, strict=True) if "could be best" in label}
    assert marked == {"class_weight", "oversample"}
    assert any(line.get_xdata()[0] == 0.0 for line in ax.get_lines())  # the reference line


def test_roc_figure_draws_the_report_remedies_and_the_best_few() -> None:
    remedies = {f"r{i}": {} for i in range(14)} | {
        "baseline": {},
        "balanced": {"train_set": "balanced"},
    }
    params = make_params([0], remedies=remedies, retrain={}, also_against=["r0"])
    aucs = {f"r{i}": 0.60 + 0.02 * i for i in range(14)} | {"baseline": 0.5, "balanced": 0.99}
    st = compare.statistics(params, make_runs({r: ([0.5], [a]) for r, a in aucs.items()}, [0]))
    shown = figures.roc_remedies(params, st)
    assert len(shown) == figures.ROC_MAX_CURVES
    assert {"baseline", "r0", "balanced", "r13"} <= set(shown)  # the report's remedies
    best_others = sorted(
        (r for r in aucs if r not in {"baseline", "r0", "balanced", "r13"}), key=lambda r: -aucs[r]
    )[: figures.ROC_MAX_CURVES - 4]
    assert set(shown) - {"baseline", "r0", "balanced", "r13"} == set(best_others)


def test_seed_band_averages_only_the_seeds_that_reached_a_step() -> None:
    steps, mean, low, high = figures.seed_band(
        [
            (np.array([100, 200, 300]), np.array([0.5, 0.7, 0.9])),
            (np.array([100, 200]), np.array([0.7, 0.9])),
        ]
    )
    assert list(steps) == [100, 200, 300]
    assert mean == pytest.approx([0.6, 0.8, 0.9])
    assert list(low) == [0.5, 0.7, 0.9] and list(high) == [0.7, 0.9, 0.9]


def test_training_curves_share_axes_across_panels(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = _Captured()
    monkeypatch.setattr(figures, "_save", captured)
    params, _ = _stats()
    s = np.arange(100, 700, 100)
    curves = {
        seed: {
            r: {
                "val_auc": (s, 0.6 + 0.05 * np.arange(6) / (1 + i)),
                "loss": (s, (3 - i) * np.exp(-s / 300)),
            }
            for i, r in enumerate(params.all_remedies)
        }
        for seed in SEEDS
    }
    best = {r: [300, 400, 500] for r in params.all_remedies}
    figures.training_curves(params, curves, best, Path("unused.png"))
    fig = captured.figs[0]
    panels = [ax for ax in fig.axes if ax.get_title() in params.all_remedies]
    twins = [ax for ax in fig.axes if ax.get_ylabel() == "loss"]
    assert len(panels) == len(params.all_remedies) == len(twins)
    assert len({ax.get_ylim() for ax in panels}) == 1 and len({ax.get_xlim() for ax in panels}) == 1
    assert len({ax.get_ylim() for ax in twins}) == 1  # one loss scale, comparable panels
    assert "5 seeds" not in fig._suptitle.get_text() and "3 seeds" in fig._suptitle.get_text()
