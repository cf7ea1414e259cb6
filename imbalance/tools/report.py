"""The pull-request report: what changed between ``<base>`` and the workspace.

    python -m imbalance.tools.report <base> <out.md> [--plots-dir DIR]
    ./dev.sh report <base> <out.md>                  (the same, after setting up .venv)

A reviewer runs it locally (``<base>`` = ``main``, ``origin/main``, a commit or an
experiment name); CI runs it in ``.github/workflows/pr-report.yaml`` against the pull
request's base and uploads it (with the plots) as the ``pr-report`` artifact, so both see
the same report. It is too large for a comment: the pull request's comment is the short
table of :mod:`imbalance.tools.pr_comment`, which links to the artifact. It holds, in
order:

1. ``dvc metrics diff --md <base> --targets metrics/summary.json``: the change of every
   remedy's mean test metrics (the file ``compare`` writes for exactly this);
2. the diff of every other metrics file (per-run metrics, class counts) folded away,
   cut to a size a PR comment can hold;
3. ``dvc params diff --md <base>``: what was changed to cause it;
4. ``dvc plots diff <base> -o <DIR>``: the HTML page with every plot of both revisions
   (``<DIR>/index.html``), and the comparison figures of both revisions embedded side by
   side; when ``vl-convert-python`` is installed (CI installs it) the Vega-Lite plots
   (ROC, precision-recall, confusion, training curves) are rendered to PNG and embedded
   as well, since a PR comment cannot run the HTML page's JavaScript;
5. the workspace's ``metrics/comparison.md`` (table, paired comparisons, claims).

Everything is ``dvc`` run as ``python -m dvc`` with this interpreter, so the report uses
the pinned DVC of the environment it runs in.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from imbalance.cli import UserError
from imbalance.files import write_bytes, write_text

SUMMARY = "metrics/summary.json"
COMPARISON = "metrics/comparison.md"
#: GitHub rejects comments above 65,536 characters; the long per-run diff is cut first.
MAX_FULL_DIFF = 30_000
PRECISION = "4"


def dvc(*args: str) -> str:
    """Run one dvc command; its stdout, or one clear error line."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR")]
        reason = errors[-1] if errors else (lines[0] if lines else "no output")
        raise UserError(f"`dvc {' '.join(args)}` failed: {reason}")
    return proc.stdout


def _or_none(table: str, none: str = "No change.") -> str:
    """A ``--md`` table, or ``none`` when it has no rows (dvc prints the header alone)."""
    rows = [ln for ln in table.strip().splitlines() if ln.strip()]
    return "\n".join(rows) if len(rows) > 2 else none


def _demote(markdown: str) -> str:
    """Headings two levels down, so the embedded comparison nests under its ``##`` section."""
    return re.sub(r"^(#{1,4}) ", r"##\1 ", markdown, flags=re.MULTILINE)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def _plots(base: str, plots_dir: Path) -> tuple[dict[str, dict[str, Path]], list[tuple[str, Path]]]:
    """``dvc plots diff``: the HTML page, the images per revision, the Vega-Lite plots.

    Returns ``{figure: {revision: png}}`` (the image plots, which DVC copies to
    ``<dir>/static/<rev>_<path with / as _>``) and the Vega-Lite plots rendered to PNG, only
    when ``vl-convert-python`` is installed (CI installs it; the pipeline does not need it).
    """
    for old in (*plots_dir.glob("static/*.png"), *plots_dir.glob("vega/*.png")):
        old.unlink()  # images of an earlier report must not pass for this one's
    plots_dir.mkdir(parents=True, exist_ok=True)  # dvc creates only the last level
    dvc("plots", "diff", base, "-o", str(plots_dir))
    images: dict[str, dict[str, Path]] = {}
    for png in sorted((plots_dir / "static").glob("*.png")):
        for rev in (base, "workspace"):
            prefix = rev.replace(os.sep, "_").replace("/", "_") + "_"
            if png.name.startswith(prefix):
                images.setdefault(png.name.removeprefix(prefix), {})[rev] = png
    try:
        import vl_convert
    except ImportError:
        return images, []
    shown = json.loads(dvc("plots", "diff", base, "--json"))
    rendered = []
    for name, items in (shown.get("data") or {}).items():
        for item in items:
            if item.get("type") == "vega":
                path = plots_dir / "vega" / f"{_slug(name)}.png"
                png = vl_convert.vegalite_to_png(vl_spec=item["content"], scale=1.0)
                write_bytes(path, png)
                rendered.append((name, path))
    return images, rendered


def build(base: str, out: Path, plots_dir: Path) -> str:
    """The report's Markdown; plot files go to ``plots_dir``."""
    rel = Path(os.path.relpath(plots_dir, out.parent))
    lines = [
        f"# Report: `{base}` \u2192 workspace",
        "",
        f"Generated by `python -m imbalance.tools.report {base} {out.name}`. Means over seeds per "
        "remedy; the intervals and the paired comparisons are in the comparison at the end.",
        "",
        f"## Metrics: mean test metrics per remedy (`{SUMMARY}`)",
        "",
    ]
    if Path(SUMMARY).is_file():
        summary = dvc(
            "metrics", "diff", base, "--md", "--no-path", "--precision", PRECISION,
            "--targets", SUMMARY,
        )  # fmt: skip
        lines.append(_or_none(summary, f"No change in `{SUMMARY}`."))
    else:
        lines.append(f"`{SUMMARY}` does not exist in the workspace; run `dvc repro` first.")
    everything = dvc("metrics", "diff", base, "--md", "--precision", PRECISION)
    others = "\n".join(ln for ln in everything.splitlines() if SUMMARY not in ln)
    if len(others) > MAX_FULL_DIFF:
        cut = others[:MAX_FULL_DIFF].rsplit("\n", 1)[0]
        others = f"{cut}\n\n(cut at {MAX_FULL_DIFF} characters; run `dvc metrics diff {base}`)"
    lines += [
        "",
        "<details><summary>Every other metrics file (per run, class counts)</summary>",
        "",
        _or_none(others),
        "",
        "</details>",
        "",
        "## Params",
        "",
        _or_none(dvc("params", "diff", base, "--md"), "No param changed."),
        "",
        "## Plots",
        "",
    ]
    images, rendered = _plots(base, plots_dir)
    lines.append(
        f"Every plot of both revisions: open `{rel / 'index.html'}` "
        f"(`dvc plots diff {base} -o {plots_dir}`)."
    )
    for name, path in rendered:
        lines += ["", f"### {name}", "", f"![{name}]({rel / path.relative_to(plots_dir)})"]
    if images:
        lines += ["", f"| figure | `{base}` | workspace |", "|---|---|---|"]
        for figure, by_rev in sorted(images.items()):
            cells = [
                f"![{rev}]({Path(os.path.relpath(by_rev[rev], out.parent))})"
                if rev in by_rev
                else "(none)"
                for rev in (base, "workspace")
            ]
            lines.append(f"| `{figure}` | {cells[0]} | {cells[1]} |")
    lines += ["", "## Comparison (workspace)", ""]
    comparison = Path(COMPARISON)
    if comparison.is_file():
        lines.append(_demote(comparison.read_text()).strip())
    else:
        lines.append(f"`{COMPARISON}` does not exist in the workspace; run `dvc repro` first.")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m imbalance.tools.report",
        description="Markdown report of metrics/params/plots changes from BASE to the workspace.",
    )
    parser.add_argument("base", help="git revision or experiment to compare against (e.g. main)")
    parser.add_argument("out", type=Path, help="Markdown file to write")
    parser.add_argument(
        "--plots-dir",
        type=Path,
        help="where `dvc plots diff` writes its HTML and images (default: <out>.plots/)",
    )
    args = parser.parse_args(argv)
    if not Path("dvc.yaml").is_file():
        raise UserError("dvc.yaml: not found; run from the project root")
    plots_dir = args.plots_dir or args.out.with_name(args.out.stem + ".plots")
    text = build(args.base, args.out, plots_dir)
    write_text(args.out, text)
    print(f"wrote {args.out} (plots: {plots_dir / 'index.html'})")


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
