"""No-op ``dvc repro`` of the default graph against bare DVC with as many trivial stages.

``python -m bench.noop`` builds two projects in a temporary directory and times a no-op
``dvc repro`` of each, alternately (``--runs`` times each), so both see the same machine
load; only the ratio means anything on a shared machine.

- **project**: this checkout's ``dvc.yaml``, ``params.yaml``, ``blocks.yaml``, ``stages/`` and
  ``imbalance/``, every output a placeholder (a file, or a directory holding one file),
  recorded with ``dvc commit``: nothing is trained, but DVC has the whole graph to check.
- **bare**: as many stages as the project has, each one code dep, two params, one out.

Every DVC call is a subprocess of the venv's ``dvc``, as a user would run it. Issue 21's
target is a ratio of at most 1.5. It is not a test: it asserts only that nothing ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    "DVC_NO_ANALYTICS": "1",
}
TARGET = 1.5

# Lists every stage's outputs, run inside a project (a subprocess: DVC's repo state must
# not outlive the call).
_LIST_OUTS = (
    "import json\nfrom dvc.repo import Repo\n"
    "stages = Repo('.').index.stages\n"
    "print(json.dumps([[str(o.def_path) for o in s.outs] for s in stages]"
    " + [[str(d.def_path) for d in s.deps if d.protocol == 'local'] for s in stages]))"
)

# Where a no-op repro's time goes (``--breakdown``): building the index, then every dep's
# and out's status, summed per stage group and kind, in-process with DVC's Repo API.
_BREAKDOWN = """
import time
from collections import Counter
from dvc.repo import Repo
repo = Repo('.')
start = time.perf_counter()
stages = repo.index.stages
print(f"  building the index: {time.perf_counter() - start:.2f} s")
spent = Counter()
for stage in stages:
    group = stage.name.split('@')[0].rstrip('0123456789')  # bare's s0, s1, ...: one group
    for dep in stage.deps:
        kind = type(dep).__name__ == 'ParamsDependency' and 'params'
        kind = kind or ('folder dep' if dep.fs.isdir(dep.fs_path) else 'file dep')
        start = time.perf_counter()
        dep.status()
        spent[group, kind] += time.perf_counter() - start
    for out in stage.outs:
        start = time.perf_counter()
        out.status()
        spent[group, 'outs'] += time.perf_counter() - start
print(f"  checking deps and outs: {sum(spent.values()):.2f} s, of which")
for (group, kind), seconds in spent.most_common(8):
    print(f"    {group:16} {kind:11} {seconds:.2f} s")
"""


def sh(cwd: Path, *cmd: str) -> str:
    """Run ``cmd`` in ``cwd``; stop with its output if it fails."""
    result = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"error: {' '.join(cmd)} failed in {cwd}:\n{result.stdout}{result.stderr}")
    return result.stdout


def _init(root: Path) -> None:
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "bench@example.invalid")
    sh(root, "git", "config", "user.name", "bench")
    sh(root, "dvc", "init", "-q")


def placeholders(root: Path) -> int:
    """Write a placeholder for every output, record them all with ``dvc commit``.

    An output with a suffix is a file; one without is a directory holding one file. A
    dependency that no output makes (a folder inside one, e.g. ``data/cifar2/seed0``)
    gets one as well. Returns the number of stages.
    """
    paths = json.loads(sh(root, str(BIN / "python"), "-c", _LIST_OUTS))
    for outs in paths:
        for out in outs:
            path = root / out
            if path.exists():
                continue
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(out)
            else:
                path.mkdir(parents=True)
                (path / "x").write_text(out)
    sh(root, "dvc", "commit", "--force", "--quiet")
    return len(paths) // 2


def build_project(root: Path) -> int:
    """Copy the pipeline and its code into ``root``; returns its number of stages."""
    root.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("dvc.yaml", "params.yaml", "blocks.yaml", ".gitignore", ".dvcignore"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, root / name)
    for name in ("stages", "imbalance"):
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    _init(root)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "project")
    return placeholders(root)


def build_bare(root: Path, n: int) -> None:
    """``n`` trivial stages: one code dep, two params, one out each."""
    (root / "code").mkdir(parents=True)
    _init(root)
    (root / "params.yaml").write_text("a: 1\nb: 2\n")
    lines = ["stages:"]
    for i in range(n):
        (root / "code" / f"s{i}.py").write_text(f"# {i}\n")
        lines += [
            f"  s{i}:",
            f"    cmd: python code/s{i}.py",
            f"    deps: [code/s{i}.py]",
            "    params: [a, b]",
            f"    outs: [out/{i}.txt]",
        ]
    (root / "dvc.yaml").write_text("\n".join(lines) + "\n")
    placeholders(root)


def noop(root: Path) -> float:
    """Seconds of one ``dvc repro`` that must run nothing."""
    start = time.perf_counter()
    out = sh(root, "dvc", "repro")
    seconds = time.perf_counter() - start
    if "Running stage" in out:
        raise SystemExit(f"error: a stage ran in {root}, so the repro was not a no-op:\n{out}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed no-op repros of each")
    parser.add_argument("--keep", type=Path, help="build here and keep (default: a temp dir)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also say where each project's time goes"
    )
    args = parser.parse_args(argv)
    base = Path(args.keep or tempfile.mkdtemp(prefix="noop-"))
    if args.keep and base.exists():
        shutil.rmtree(base)
    try:
        project, bare = base / "project", base / "bare"
        n = build_project(project)
        build_bare(bare, n)
        times: dict[str, list[float]] = {"project": [], "bare": []}
        for root in (project, bare):  # warm-up: DVC's state db, Python's bytecode
            noop(root)
        for _ in range(args.runs):
            for name, root in (("project", project), ("bare", bare)):
                times[name].append(noop(root))
        if args.breakdown:
            for name, root in (("project", project), ("bare", bare)):
                print(f"{name}:\n{sh(root, str(BIN / 'python'), '-c', _BREAKDOWN)}", end="")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        median = statistics.median(values)
        print(f"{name:8} {n} stages: no-op dvc repro {shown} s, median {median:.2f} s")
    ratios = [p / b for p, b in zip(times["project"], times["bare"], strict=True)]
    ratio = statistics.median(times["project"]) / statistics.median(times["bare"])
    print(f"ratio per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"ratio of medians: {ratio:.2f} (target <= {TARGET})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
