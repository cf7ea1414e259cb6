"""The pull request's results comment: the committed results of base and head, compared.

    python -m imbalance.tools.pr_comment BASE HEAD OUT.md [--lockcheck FILE] [--footer TEXT]

BASE and HEAD are git revisions (read with ``git show REV:metrics/...``) or directories
holding a ``metrics/`` folder (a checkout, or the copies under ``tests/fixtures/results/``).
Nothing is trained or reproduced: the study takes hours, and a pull request that changes
the results commits them (with the dvc.lock that says where they came from; CI checks
that lock with :mod:`imbalance.tools.lockcheck`). So the comment reviews what is
committed, in one table of remedy x key metric, base -> head:

- test ROC AUC (threshold-free), test recall at the fixed threshold 0.5 (what the
  baseline loses), and balanced accuracy at the threshold tuned on validation;
- the difference, marked *noise* when it lies inside head's seed-to-seed interval (the
  half the width of head's 95% interval over seeds, ``metrics/statistics.json``): a change
  smaller than how much the same code moves from one seed to the next is not a finding;
- the data source and the seeds of each side, since a difference in either changes every
  number;
- the params that differ between the two sides' ``params.yaml`` (base -> head, one row per
  leaf key, e.g. ``train.early_stopping.patience``), so a reviewer sees what explains the
  moves without running ``dvc params diff``.

The metrics, their labels and their order are the ``pr_comment`` view of
:mod:`imbalance.analysis.metrics`.

The full report (``dvc metrics diff``, ``dvc params diff``, every plot of both revisions:
:mod:`imbalance.tools.report`) is too large for a comment; CI uploads it as an artifact.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imbalance.analysis import metrics
from imbalance.cli import UserError
from imbalance.tools.lockcheck import STALE_HEADLINE

#: (statistics.json key, summary.json path, column title): the registry's ``pr_comment``
#: view (summary.json, the older layout, keeps tuned metrics under ``tuned``).
METRICS: tuple[tuple[str, tuple[str, ...], str], ...] = tuple(
    (
        c.key,
        (c.metric.name,) if c.at == "test" else ("tuned", c.metric.name),
        metrics.label(c, "pr_comment"),
    )
    for c in metrics.columns("pr_comment")
    if c.metric is not None
)
#: At most this many changed params are listed (a sweep of remedies can change hundreds).
MAX_PARAMS = 40
#: A param value longer than this is cut (a list of 50 seeds says little in a cell).
MAX_VALUE = 60
#: Marks a key that one side's params.yaml does not have.
ABSENT = object()
#: GitHub rejects comments above 65,536 characters; keep a margin for the footer.
MAX_CHARS = 60_000
WATERMARK = "<!-- imbalance:pr-comment -->"


@dataclass(frozen=True)
class Value:
    mean: float
    #: Half the width of the 95% interval over seeds; None with one seed or no statistics.
    half: float | None = None
    #: `` (3 of 5 seeds)`` when the metric is undefined on some seeds (left out of the mean).
    defined: str = ""


@dataclass
class Results:
    """One side's committed results, as far as its files tell."""

    label: str
    remedies: dict[str, dict[str, Value]] = field(default_factory=dict)
    seeds: list[int] | None = None
    n_seeds: int | None = None
    data_source: str | None = None
    #: params.yaml flattened to dotted leaf keys; None when the side has no params.yaml.
    params: dict[str, Any] | None = None


# ----------------------------------------------------------------------------- reading


def _read(where: str, path: str, root: Path) -> str | None:
    """A committed file: ``where/path`` for a directory, else ``git show where:path``."""
    directory = Path(where)
    if directory.is_dir():
        file = directory / path
        return file.read_text() if file.is_file() else None
    proc = subprocess.run(
        ["git", "show", f"{where}:{path}"], cwd=root, capture_output=True, text=True
    )
    return proc.stdout if proc.returncode == 0 else None


def _label(where: str, root: Path) -> str:
    """A short name for a side: the directory's name, the short sha for a sha, else
    ``name (short sha)`` (``HEAD (4a03f17)``, ``main (ff3ab05)``)."""
    if Path(where).is_dir():
        return Path(where).resolve().name
    shas = []
    for extra in ([], ["--short"]):
        proc = subprocess.run(
            ["git", "rev-parse", *extra, "--verify", "--quiet", f"{where}^{{commit}}"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise UserError(f"{where}: neither a directory nor a git revision; fetch it first")
        shas.append(proc.stdout.strip())
    full, short = shas
    return short if full.startswith(where.lower()) else f"{where} ({short})"


def read_results(where: str, root: Path = Path(".")) -> Results:
    """Everything the comment needs from one side. The one function that knows the
    metrics files' layout: ``metrics/statistics.json`` (means and intervals over seeds),
    else ``metrics/summary.json`` (means only), plus the data source from
    ``metrics/comparison.md``'s "Data" line or, failing that, dvc.lock's ``data`` params."""
    results = Results(_label(where, root))
    stats_text = _read(where, "metrics/statistics.json", root)
    summary_text = _read(where, "metrics/summary.json", root)
    if stats_text:
        stats = json.loads(stats_text)
        results.seeds = stats.get("seeds")
        # with sequential blocks remedies differ in seeds: each is defined on its own
        by_remedy = stats.get("seeds_by_remedy") or {}
        for remedy, by_metric in (stats.get("remedies") or {}).items():
            ran = by_remedy.get(remedy, results.seeds or [])
            for key, _, _ in METRICS:
                cell = by_metric.get(key)
                if cell and _number(cell.get("mean")) is not None:
                    low, high = _number(cell.get("ci_low")), _number(cell.get("ci_high"))
                    half = (high - low) / 2 if low is not None and high is not None else None
                    n, of = cell.get("n"), len(ran)
                    defined = f" ({n} of {of} seeds)" if isinstance(n, int) and n < of else ""
                    results.remedies.setdefault(remedy, {})[key] = Value(
                        cell["mean"], half, defined
                    )
    elif summary_text:
        for remedy, values in json.loads(summary_text).items():
            results.n_seeds = results.n_seeds or values.get("n_seeds")
            for key, path, _ in METRICS:
                node: Any = values
                for part in path:
                    node = node.get(part) if isinstance(node, dict) else None
                if _number(node) is not None:
                    results.remedies.setdefault(remedy, {})[key] = Value(node)
    if results.seeds is not None:
        results.n_seeds = len(results.seeds)
    params_text = _read(where, "params.yaml", root)
    if params_text is not None:
        try:
            loaded = yaml.safe_load(params_text)
        except yaml.YAMLError as err:
            raise UserError(f"{where}: params.yaml is not valid YAML ({err})") from None
        results.params = flatten(loaded if isinstance(loaded, dict) else {})
    comparison = _read(where, "metrics/comparison.md", root) or ""
    line = next((ln for ln in comparison.splitlines() if ln.startswith("- **Data**")), "")
    source = re.search(r"source `([^`]+)`", line)
    kind = re.search(r"kind `([^`]+)`", line)
    if source:
        official = "" if "NOT the official" not in line else ", not the official archive"
        results.data_source = f"`{source[1]}`" + (f" ({kind[1]}{official})" if kind else "")
    else:
        lock = _read(where, "dvc.lock", root) or ""
        found = re.search(r"^\s+source: (\S+)", lock, flags=re.MULTILINE)
        results.data_source = f"`{found[1]}`" if found else None
    return results


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"batch_size": 64}}`` -> ``{"train.batch_size": 64}``; lists are leaves
    (``seeds: [0, 1, 2]`` is one param, as ``dvc params diff`` shows it)."""
    out: dict[str, Any] = {}
    for name, value in tree.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{dotted}."))
        else:
            out[dotted] = value
    return out


def params_changes(base: dict[str, Any], head: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, base value, head value) of every leaf that differs, :data:`ABSENT` where a
    side lacks it; in params.yaml's order (head's keys first, then those only in base)."""
    keys = list(head) + [k for k in base if k not in head]
    out = []
    for k in keys:
        b, h = base.get(k, ABSENT), head.get(k, ABSENT)
        if b is ABSENT or h is ABSENT or b != h or type(b) is not type(h):
            out.append((k, b, h))
    return out


def _param_value(value: Any) -> str:
    if value is ABSENT:
        return "\u2014"
    shown = value if isinstance(value, str) else json.dumps(value)
    if len(shown) > MAX_VALUE:
        shown = shown[: MAX_VALUE - 1] + "\u2026"
    return "`" + shown.replace("|", "\\|").replace("`", "'") + "`"


def params_section(base: Results, head: Results) -> list[str]:
    """The changed params, base -> head, or why they cannot be shown."""
    missing = [side.label for side in (base, head) if side.params is None]
    if missing:
        return [
            f"**Params**: no params.yaml on {' and '.join(f'`{m}`' for m in missing)}; "
            "changes not shown.",
            "",
        ]
    assert base.params is not None and head.params is not None
    changes = params_changes(base.params, head.params)
    if not changes:
        return ["**Params**: params.yaml is the same on both sides.", ""]
    lines = [
        f"**Params changed** ({len(changes)}, params.yaml base \u2192 head; \u2014 = absent):",
        "",
        "| param | base | head |",
        "|---|---|---|",
    ]
    for k, b, h in changes[:MAX_PARAMS]:
        lines.append(f"| `{k}` | {_param_value(b)} | {_param_value(h)} |")
    if len(changes) > MAX_PARAMS:
        lines.append(f"| \u2026 {len(changes) - MAX_PARAMS} more (`dvc params diff`) | | |")
    return [*lines, ""]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


# ----------------------------------------------------------------------------- rendering


def _seeds(results: Results) -> str:
    if results.seeds is not None:
        return f"{len(results.seeds)} ({', '.join(str(s) for s in results.seeds)})"
    return str(results.n_seeds) if results.n_seeds else "unknown"


def _cells(base: Value | None, head: Value | None) -> tuple[str, str]:
    """``base -> head ±half`` and the difference, marked noise inside head's interval."""
    if head is None:
        if base is None:
            return "", ""
        return f"{base.mean:.3f}{base.defined} \u2192 \u2014", "removed"
    spread = f" \u00b1{head.half:.3f}" if head.half is not None else ""
    spread += head.defined
    if base is None:
        return f"\u2014 \u2192 {head.mean:.3f}{spread}", "new"
    diff = head.mean - base.mean
    text = f"{diff:+.3f}" if round(diff, 3) != 0 else "0.000"
    if head.half is None:
        mark = text
    elif abs(diff) <= head.half:
        mark = f"{text} *noise*"
    else:
        mark = f"**{text}**"
    return f"{base.mean:.3f}{base.defined} \u2192 {head.mean:.3f}{spread}", mark


def render(base: Results, head: Results, *, lockcheck: str = "", footer: str = "") -> str:
    """The comment's Markdown (under :data:`MAX_CHARS`)."""
    lines = [
        WATERMARK,
        f"## Results: `{base.label}` \u2192 `{head.label}`",
        "",
        "The committed results of both sides, compared; nothing was retrained. Cells: "
        "base \u2192 head mean over seeds, \u00b1 head's 95% interval half-width over seeds. "
        "A difference inside that interval is *noise* (the same code moves that much "
        "from one seed to the next); **bold** ones are outside it.",
        "",
        f"| | base `{base.label}` | head `{head.label}` |",
        "|---|---|---|",
        f"| data source | {base.data_source or 'unknown'} | {head.data_source or 'unknown'} |",
        f"| seeds | {_seeds(base)} | {_seeds(head)} |",
        "",
        *params_section(base, head),
    ]
    warnings = []
    if base.data_source != head.data_source:
        warnings.append("the data sources differ: every number moves with them")
    if (base.seeds or base.n_seeds) != (head.seeds or head.n_seeds):
        warnings.append("the seeds differ: differences mix the change with new seeds")
    if not head.remedies:
        warnings.append("head has no committed results (metrics/statistics.json, summary.json)")
    stale = STALE_HEADLINE in lockcheck
    if stale:
        warnings.append(
            "head's dvc.lock does not match head's code and params: its results are stale "
            "(details below)"
        )
    if warnings:
        lines += ["> **Note**", *(f"> - {w}." for w in warnings), ""]

    header = "| remedy | " + " | ".join(f"{title} | \u0394" for _, _, title in METRICS) + " |"
    rows = [header, "|---|" + "---:|---:|" * len(METRICS)]
    remedies = list(head.remedies) + [r for r in base.remedies if r not in head.remedies]
    for remedy in remedies:
        cells = []
        for key, _, _ in METRICS:
            b = base.remedies.get(remedy, {}).get(key)
            h = head.remedies.get(remedy, {}).get(key)
            cells += _cells(b, h)
        rows.append(f"| `{remedy}` | " + " | ".join(cells) + " |")

    tail = []
    if stale:
        tail += [
            "",
            "<details><summary>dvc.lock check of head</summary>",
            "",
            "```",
            lockcheck.strip()[:4000],
            "```",
            "",
            "</details>",
        ]
    if footer:
        tail += ["", footer]
    budget = MAX_CHARS - len("\n".join(lines + tail)) - 200
    kept = []
    for row in rows:
        budget -= len(row) + 1
        if budget < 0:
            kept.append(f"\n({len(rows) - len(kept)} more rows cut to fit a comment)")
            break
        kept.append(row)
    return "\n".join(lines + kept + tail).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m imbalance.tools.pr_comment",
        description="One pull-request comment comparing the committed results of BASE and "
        "HEAD (git revisions or directories with metrics/).",
    )
    parser.add_argument("base", help="git revision or directory (e.g. the PR's base sha)")
    parser.add_argument("head", help="git revision or directory (e.g. HEAD)")
    parser.add_argument("out", type=Path, help="Markdown file to write")
    parser.add_argument(
        "--lockcheck",
        type=Path,
        help="output of `python -m imbalance.tools.lockcheck` on head, shown when stale",
    )
    parser.add_argument("--footer", default="", help="a last line (e.g. the artifact's link)")
    args = parser.parse_args(argv)
    root = Path(".")
    base, head = read_results(args.base, root), read_results(args.head, root)
    if not base.remedies and not head.remedies:
        raise UserError(
            f"{args.base}, {args.head}: neither has metrics/statistics.json or "
            "metrics/summary.json committed"
        )
    lockcheck = args.lockcheck.read_text() if args.lockcheck and args.lockcheck.is_file() else ""
    text = render(base, head, lockcheck=lockcheck, footer=args.footer)
    from imbalance.files import write_text

    write_text(args.out, text)
    print(f"wrote {args.out} ({len(text)} characters)")


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
