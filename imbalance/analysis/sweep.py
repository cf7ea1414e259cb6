"""Imbalance-ratio sweep: collect DVC experiments that differ only in the split counts.

How to run a sweep (every experiment is the whole study at one minority count; the
commit's own results are one more point)::

    dvc exp run --queue -S split.n_minority=5
    dvc exp run --queue -S split.n_minority=500
    dvc exp run --queue -S split.n_minority=5000
    dvc queue start -j 1        # one at a time: each experiment already uses both cores
    dvc queue status            # wait until every task shows Success
    python -m imbalance.analysis.compare sweep          # or: python -m imbalance.analysis.sweep

``n_minority`` above ``n_majority`` is the reverse imbalance; ``n_minority = n_majority``
is the balanced case (ratio 1). The collector writes ``figures/sweep.png`` (test ROC AUC,
recall at the fixed threshold and recall at the tuned threshold against the imbalance
ratio ``n_majority / n_minority`` on a log axis, one line per remedy with its interval
over seeds) and ``metrics/sweep.json`` (the same numbers), or both into ``--out DIR``.

Which experiments count: ``dvc exp show --json`` lists the baseline commit and its
experiments with their params and metrics. A finished experiment is used when every
param except ``split.n_minority`` / ``split.n_majority`` equals the baseline commit's,
so a sweep is never mixed with, say, a batch-size experiment; queued, running and failed
ones and the others are listed under ``skipped`` with the reason. Each point is the
experiment's own ``metrics/statistics.json`` entry (mean and interval over seeds), read
from the experiment's git commit (``git show <rev>:metrics/statistics.json``), so the
sweep shows exactly the numbers each study reported. Two experiments with the same
ratio: the newer wins.

Options: ``--input FILE`` reads a saved ``dvc exp show --json`` instead of running it;
``--all-commits`` passes ``-A`` to ``dvc exp show`` (experiments of every commit);
``--remedies a,b`` draws only those remedies.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imbalance.analysis import metrics
from imbalance.cli import UserError
from imbalance.files import write_json, write_with
from imbalance.layout import Layout

SWEEP_KEYS = frozenset({"split.n_minority", "split.n_majority"})
#: (key in statistics.json's ``remedies.<remedy>``, label): the registry's ``sweep`` view.
SWEEP_METRICS = tuple((c.key, metrics.label(c, "sweep")) for c in metrics.columns("sweep"))
DEFAULT_CONFIDENCE = 0.95
STATISTICS = Layout().statistics.as_posix()

#: ``read(rev, path)``: a file of a commit, or None when the commit does not have it.
Reader = Callable[[str, str], str | None]


def git_show(rev: str, path: str) -> str | None:
    result = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _params(data: dict[str, Any]) -> dict[str, Any]:
    return ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}


def candidates(exp_show: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every finished commit/experiment of ``dvc exp show --json`` (dvc 3.x layout).

    The layout: a list of baseline entries (the first is ``workspace``), each
    ``{"rev", "name", "data": {"timestamp", "params": {"params.yaml": {"data"}},
    "metrics": {path: {"data"}}}, "experiments": [{"name", "executor": {"state"} | null,
    "revs": [{"rev", "name", "data": {...}}]}]}``. The workspace entry is skipped: it
    duplicates the commit or holds unfinished work.
    """
    found: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for base in exp_show:
        if base.get("rev") == "workspace":
            continue
        data = base.get("data") or {}
        if data:
            found.append(
                {
                    "name": base.get("name") or str(base.get("rev", ""))[:7],
                    "rev": base.get("rev"),
                    "kind": "commit",
                    "timestamp": data.get("timestamp") or "",
                    "data": data,
                }
            )
        for exp in base.get("experiments") or []:
            name = exp.get("name") or "?"
            state = (exp.get("executor") or {}).get("state") or "success"
            revs = exp.get("revs") or []
            if state != "success" or not revs:
                skipped.append({"name": name, "reason": f"not finished ({state})"})
                continue
            head = revs[0]
            if head.get("error"):
                skipped.append({"name": name, "reason": f"error: {head['error']}"})
                continue
            found.append(
                {
                    "name": name,
                    "rev": head.get("rev"),
                    "kind": "experiment",
                    "timestamp": (head.get("data") or {}).get("timestamp") or "",
                    "data": head.get("data") or {},
                }
            )
    return found, skipped


def collect(exp_show: list[dict[str, Any]], read: Reader | None = None) -> dict[str, Any]:
    """The sweep's numbers: which runs count, and per remedy and metric one point per ratio."""
    read = read or git_show
    found, skipped = candidates(exp_show)
    commits = [c for c in found if c["kind"] == "commit"]
    if not commits:
        raise UserError("dvc exp show lists no commit with results; commit the study first")
    reference = commits[0]
    ref_params = _flatten(_params(reference["data"]))
    if not ref_params:
        raise UserError("the baseline commit has no params.yaml params in `dvc exp show`")

    chosen: dict[float, dict[str, Any]] = {}
    for cand in found:
        if cand is not reference and cand["kind"] == "commit":
            continue  # other commits (-A): only their experiments may match
        params = _flatten(_params(cand["data"]))
        differ = sorted(
            k
            for k in set(params) | set(ref_params)
            if k not in SWEEP_KEYS and params.get(k) != ref_params.get(k)
        )
        if differ:
            shown = ", ".join(differ[:3]) + (" ..." if len(differ) > 3 else "")
            skipped.append({"name": cand["name"], "reason": f"other params differ: {shown}"})
            continue
        try:
            n_maj, n_min = int(params["split.n_majority"]), int(params["split.n_minority"])
        except (KeyError, TypeError, ValueError):
            skipped.append({"name": cand["name"], "reason": "no split.n_majority/n_minority"})
            continue
        text = read(str(cand["rev"]), STATISTICS)
        if not text:
            skipped.append({"name": cand["name"], "reason": f"no {STATISTICS} in its commit"})
            continue
        ratio = n_maj / n_min
        cand = {**cand, "n_majority": n_maj, "n_minority": n_min, "ratio": ratio}
        cand["statistics"] = json.loads(text)
        previous = chosen.get(ratio)
        if previous is None or cand["timestamp"] > previous["timestamp"]:
            if previous is not None:
                skipped.append(
                    {"name": previous["name"], "reason": f"superseded at ratio {ratio:g}"}
                )
            chosen[ratio] = cand
        else:
            skipped.append({"name": cand["name"], "reason": f"superseded at ratio {ratio:g}"})

    raw = _params(reference["data"])
    remedies = [*(raw.get("remedies") or {}), *(raw.get("retrain") or {})]
    seeds = list(raw.get("seeds") or [])
    confidence = float(ref_params.get("compare.confidence", DEFAULT_CONFIDENCE))
    points: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for remedy in remedies:
        points[remedy] = {}
        for key, _ in SWEEP_METRICS:
            line = []
            for ratio in sorted(chosen):
                d = chosen[ratio]["statistics"]["remedies"].get(remedy, {}).get(key)
                if d and d.get("n"):
                    line.append({"ratio": ratio, "experiment": chosen[ratio]["name"], **d})
            points[remedy][key] = line
    return {
        "confidence": confidence,
        # how each study's statistics.json computed the bands (older ones do not say)
        "interval": next(
            (c["statistics"]["interval"] for c in chosen.values() if "interval" in c["statistics"]),
            "t-interval of the mean",
        ),
        "seeds": seeds,
        "baseline": {"name": reference["name"], "rev": reference["rev"]},
        "experiments": [
            {k: chosen[r][k] for k in ("name", "rev", "kind", "n_majority", "n_minority", "ratio")}
            for r in sorted(chosen)
        ],
        "skipped": skipped,
        "points": points,
        "classes": {
            "negative": ref_params.get("classes.negative", "negative"),
            "positive": ref_params.get("classes.positive", "positive"),
        },
    }


def draw(sweep: dict[str, Any], path: Path, remedies: list[str] | None = None) -> None:
    """Test metrics against the imbalance ratio, a line per remedy with its CI band."""
    from imbalance.analysis import figures  # sets the Agg backend

    plt = figures.plt
    names = [r for r in sweep["points"] if remedies is None or r in remedies]
    all_names = list(sweep["points"])
    fig, axes = plt.subplots(1, len(SWEEP_METRICS), figsize=(5.0 * len(SWEEP_METRICS) + 2.6, 4.8))
    pos = sweep["classes"]["positive"]
    neg = sweep["classes"]["negative"]
    for ax, (key, label) in zip(axes, SWEEP_METRICS, strict=True):
        for remedy in names:
            line = sweep["points"][remedy][key]
            if not line:
                continue
            i = all_names.index(remedy)
            x = np.array([p["ratio"] for p in line])
            y = np.array([p["mean"] for p in line])
            ax.plot(
                x,
                y,
                marker="o",
                ms=4,
                color=figures._color(i),
                ls=figures._style(i),
                lw=1.6,
                label=remedy,
            )
            low = np.array([np.nan if p["ci_low"] is None else p["ci_low"] for p in line])
            high = np.array([np.nan if p["ci_high"] is None else p["ci_high"] for p in line])
            ok = ~np.isnan(low)
            if ok.any():
                ax.fill_between(
                    x[ok],
                    np.clip(low[ok], 0, 1),
                    np.clip(high[ok], 0, 1),
                    color=figures._color(i),
                    alpha=0.12,
                    lw=0,
                )
        ax.set_xscale("log")
        ratios = [e["ratio"] for e in sweep["experiments"]]
        ax.set_xticks(ratios, [f"{r:g}" for r in ratios])  # the swept ratios, not decades
        ax.minorticks_off()
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(f"imbalance ratio n({neg}) / n({pos}), log scale")
        ax.set_ylabel(label.split(" at ")[0].replace("recall", f"recall of {pos}"))
        ax.set_title(label, fontsize=11)
        ax.grid(alpha=0.3)
    n = len(sweep["seeds"])
    band = (
        f"bands: {sweep['confidence']:.0%} interval of the mean over {n} seeds, each study's "
        "(sweep.json: interval)"
        if n > 1
        else "n=1: no bands"
    )
    fig.suptitle(
        f"Imbalance-ratio sweep ({len(sweep['experiments'])} runs; {band}; positive class: {pos})",
        fontsize=12,
    )
    handles, labels = axes[0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 0.86, 0.95))
    fig.legend(
        handles, labels, loc="center left", bbox_to_anchor=(0.865, 0.5), frameon=False, fontsize=9
    )
    write_with(path, lambda tmp: figures._save(fig, tmp), suffix=".png")


def exp_show(all_commits: bool = False) -> list[dict[str, Any]]:
    """``dvc exp show --json`` of the repository in the current directory."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    if all_commits:
        cmd.append("-A")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"`dvc exp show --json` failed: {last}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise UserError(
            "`dvc exp show --json` printed no JSON; is this a DVC repository?"
        ) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m imbalance.analysis.compare sweep",
        description="Collect an imbalance-ratio sweep of DVC experiments into a figure + JSON.",
    )
    parser.add_argument("--out", type=Path, help="write sweep.png and sweep.json here")
    parser.add_argument("--input", type=Path, help="a saved `dvc exp show --json` output")
    parser.add_argument("--all-commits", action="store_true", help="pass -A to dvc exp show")
    parser.add_argument("--remedies", help="comma-separated remedies to draw (default: all)")
    args = parser.parse_args(argv)
    if args.input:
        try:
            data = json.loads(args.input.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"{args.input}: unreadable ({err})") from None
    else:
        data = exp_show(args.all_commits)
    sweep = collect(data)
    if not sweep["experiments"]:
        raise UserError("no finished experiment matches the baseline's params; see `dvc exp show`")
    png = args.out / "sweep.png" if args.out else Path("figures") / "sweep.png"
    out_json = args.out / "sweep.json" if args.out else Path("metrics") / "sweep.json"
    remedies = args.remedies.split(",") if args.remedies else None
    draw(sweep, png, remedies)
    write_json(out_json, sweep)
    ratios = ", ".join(f"{e['ratio']:g} ({e['name']})" for e in sweep["experiments"])
    print(f"sweep: ratios {ratios}; skipped {len(sweep['skipped'])}; wrote {png} and {out_json}")


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
