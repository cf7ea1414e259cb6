"""Are the committed results still the results of this code and these params?

    python -m imbalance.tools.lockcheck [ROOT]     exit 0: current; 1: stale (report on stdout)

The committed results (``metrics/``, ``figures/``, ``plots/comparison/``) are only as
trustworthy as the claim that they came from the code and params next to them. dvc.lock
records that claim: for every stage, the md5 of each dependency and the value of each
param the stage last ran with. ``dvc status`` checks it too, but it hashes every data
dependency and output (``data/raw``, ``models/``, ...), which a clean clone -- CI --
does not have. This check compares only what git carries, so it runs anywhere in about a
second (a few more when the ``resolve`` stage is stale: it then asks that stage which of
its files would change), with no data:

(a) every dependency that is a file git carries (tracked, or new and not ignored: the
    code under ``stages/`` and ``imbalance/``), by the md5 DVC computes for it;
    git-ignored dependencies (data, models, predictions: outputs of other stages) are
    skipped, since a clean clone has none of them;
(b) every declared param's value in the params file against the value dvc.lock recorded;
(c) stages in dvc.yaml that dvc.lock does not have, and changed commands;
(d) the committed outputs themselves (``cache: false``: metrics, figures, plot data)
    against the md5 dvc.lock recorded for them, so results edited or copied in after the
    run are caught too, and committed outputs that are absent (a deleted report).

Stages come from DVC's own parser (matrix / foreach expanded exactly as ``dvc repro``
expands them), dvc.lock and params files are read with DVC's own YAML loader and param
lookup, and file hashes with DVC's own function, so "current" here means what it means
to ``dvc status``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbalance.cli import UserError

DEFAULT_PARAMS_FILE = "params.yaml"
#: The first words of a failing report (the PR comment looks for them).
STALE_HEADLINE = "dvc.lock does not match the workspace"
_MISSING = object()


@dataclass(frozen=True)
class Stale:
    """One stage whose dvc.lock entry does not match the workspace, and why."""

    stage: str
    reasons: tuple[str, ...]


@dataclass
class LockCheck:
    """The result of :func:`check`: stale stages in dvc.yaml order, and what to do."""

    stale: list[Stale]
    #: Stages that are current themselves but consume outputs of stale ones: the refresh
    #: re-runs them too (their data dependencies will change).
    downstream: list[str]
    #: Every stage name in dvc.yaml order (for compressing names into ``group@*``).
    stages: list[str]
    #: The command that brings the results up to date.
    refresh: str = "dvc repro, then commit dvc.lock with metrics/, figures/, plots/"

    @property
    def ok(self) -> bool:
        return not self.stale

    def lines(self) -> list[str]:
        """One line per group of stages sharing the same reasons, then the downstream line."""
        buckets: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for item in self.stale:
            buckets.setdefault((_group(item.stage), item.reasons), []).append(item.stage)
        lines = [
            f"{_compress(names, self.stages)}: {'; '.join(reasons)}"
            for (_, reasons), names in buckets.items()
        ]
        if self.downstream:
            by_group: dict[str, list[str]] = {}
            for name in self.downstream:
                by_group.setdefault(_group(name), []).append(name)
            rest = ", ".join(_compress(names, self.stages) for names in by_group.values())
            lines.append(f"re-run as well (their inputs are outputs of the above): {rest}")
        return lines

    def report(self) -> str:
        if self.ok:
            return "dvc.lock matches the workspace's code and params: the results are current."
        head = (
            f"{STALE_HEADLINE}: the committed results did not come from this code and these "
            "params. Stale stages:"
        )
        body = [f"  {line}" for line in self.lines()]
        return "\n".join([head, *body, f"refresh: {self.refresh}"])


def check(root: str | Path = ".") -> LockCheck:
    """Compare dvc.yaml's stages (code deps, params, commands) with dvc.lock."""
    root = Path(root).resolve()
    if not (root / "dvc.yaml").is_file():
        raise UserError(f"{root / 'dvc.yaml'}: not found; run from the project root")
    stages = _resolve_stages(root)
    lock = _load_yaml(root / "dvc.lock").get("stages", {}) if (root / "dvc.lock").exists() else {}
    carried = _git_files(root)
    hashes: dict[tuple[str, str], str | None] = {}
    params_cache: dict[str, Any] = {}

    stale = []
    unchanged: set[str] = set()  # resolve stage outputs its re-run writes again as they are
    for name, stage in stages.items():
        entry = lock.get(name)
        if entry is None:
            reasons = ["not in dvc.lock"]
        else:
            reasons = []
            if entry.get("cmd") != stage.get("cmd"):
                reasons.append(f"command changed ({entry.get('cmd')!r} -> {stage.get('cmd')!r})")
            reasons += _dep_reasons(root, stage, entry, carried, hashes)
            reasons += _param_reasons(root, stage, entry, params_cache)
            reasons += _out_reasons(root, stage, entry, carried, hashes)
        if reasons and RESOLVED in _paths(stage.get("outs")):
            reasons += _rewrites(root, unchanged)
        if reasons:
            stale.append(Stale(name, tuple(reasons)))

    names = {s.stage for s in stale}
    moving = {s.stage for s in stale if SAME_COMPOSITION not in s.reasons}
    return LockCheck(stale, _downstream(stages, names, moving, unchanged), list(stages))


#: The resolve stage's output (imbalance/resolution.py): the files the other stages
#: depend on in place of code and params.
RESOLVED = "compositions"
#: Said of a resolve stage whose re-run writes every file as it is: nothing re-runs.
SAME_COMPOSITION = "its re-run writes every compositions/ file as it is (no stage re-runs for it)"


def _rewrites(root: Path, unchanged: set[str]) -> list[str]:
    """Which of its files will a stale resolve stage rewrite? It runs in seconds with no
    data, so ask it (``python -m stages.resolve --dry-run``) and compare with the committed
    files: a comment in one component kind's module changes only the compositions of the
    remedies that load it, and only their trainings re-run, as ``dvc repro`` will. Adds
    the files it writes as they are to ``unchanged``."""
    proc = subprocess.run(
        [sys.executable, "-m", "stages.resolve", "--dry-run"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"its re-run fails: {last}"]
    from imbalance.resolution import render

    expected = {f"{RESOLVED}/{rel}": render(c) for rel, c in json.loads(proc.stdout).items()}
    out = root / RESOLVED
    committed = (
        {p.relative_to(root).as_posix() for p in out.rglob("*.json")} if out.is_dir() else set()
    )

    def same(rel: str) -> bool:
        return (
            rel in expected and (root / rel).is_file() and (root / rel).read_text() == expected[rel]
        )

    changed = sorted(rel for rel in expected.keys() | committed if not same(rel))
    unchanged |= set(expected) - set(changed)
    if not changed:
        return [SAME_COMPOSITION]
    shown = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
    return [f"its re-run rewrites {shown}"]


# ----------------------------------------------------------------------------- reading


def _load_yaml(path: Path) -> dict[str, Any]:
    """A YAML file read the way DVC reads dvc.lock (ruamel, YAML 1.2, safe)."""
    from dvc.utils.serialize import load_yaml

    try:
        return load_yaml(str(path)) or {}
    except Exception as err:  # DVC raises its own YAMLFileCorruptedError subclasses
        raise UserError(f"{path}: cannot be read as YAML ({err})") from err


def _resolve_stages(root: Path) -> dict[str, dict[str, Any]]:
    """dvc.yaml's stages with ``matrix`` / ``foreach`` / ``${...}`` expanded by DVC itself.

    ``DataResolver`` is what ``Repo.index.stages`` uses underneath; calling it directly
    skips building an Output object per dependency and DVC's schema-checked lock load,
    which took most of the 1.8 s that ``index.stages`` needs on this project.
    """
    from dvc.parsing import DataResolver
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except Exception as err:
        raise UserError(f"{root}: not a DVC project ({err})") from err
    try:
        data = _load_yaml(root / "dvc.yaml")
        return dict(DataResolver(repo, str(root), data).resolve().get("stages", {}))
    except UserError:
        raise
    except Exception as err:  # interpolation errors name the stage and the variable
        raise UserError(f"{root / 'dvc.yaml'}: cannot be resolved ({err})") from err
    finally:
        repo.close()


def _git_files(root: Path) -> set[str]:
    """Files git carries or would carry: tracked, or new and not ignored (posix, relative)."""
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()[:1]
        raise UserError(f"{root}: git ls-files failed ({' '.join(reason)}); needs a git work tree")
    # run in ROOT, git lists paths relative to it (also when ROOT is a subdirectory)
    return {p for p in proc.stdout.decode().split("\0") if p}


def _paths(items: Iterable[Any] | None) -> list[str]:
    """Paths of a deps / outs list, whose items are ``path`` or ``{path: options}``."""
    out = []
    for item in items or []:
        out.extend([item] if isinstance(item, str) else list(item))
    return out


def _read_params(
    root: Path, file: str, keys: list[str] | None, cache: dict[str, Any]
) -> dict[str, Any]:
    """Declared params' current values, looked up exactly as DVC does (``a.b.c`` keys)."""
    from dvc.dependency.param import read_param_file
    from dvc_objects.fs import localfs

    path = root / file
    if file not in cache:
        if not path.is_file():
            cache[file] = None
        else:
            try:
                cache[file] = read_param_file(localfs, str(path))
            except Exception as err:
                raise UserError(f"{path}: cannot be read ({err})") from err
    config = cache[file]
    if config is None:
        return {}
    if not keys:
        return dict(config)
    import dpath

    found = {}
    for key in keys:
        try:
            found[key] = dpath.get(config, key, separator=".")
        except KeyError:
            continue
    return found


# ----------------------------------------------------------------------------- comparing


def _file_md5(path: Path, name: str) -> str:
    """DVC's own file hash: ``md5`` is the md5 of the bytes; ``md5-dos2unix`` (a dvc.lock
    entry without ``hash: md5``, written by DVC 2) hashes text files with CRLF as LF."""
    from dvc_data.hashfile.hash import file_md5

    return file_md5(str(path), name=name)


def _dep_reasons(
    root: Path,
    stage: Mapping[str, Any],
    entry: Mapping[str, Any],
    carried: set[str],
    hashes: dict[tuple[str, str], str | None],
) -> list[str]:
    locked = {d.get("path"): d for d in entry.get("deps") or []}
    changed, new, missing = [], [], []
    for path in _paths(stage.get("deps")):
        rel = Path(path).as_posix().rstrip("/")
        inside = _carried_dir(root, rel, carried)
        if rel not in carried and inside is None:
            continue  # git-ignored: data, models (other stages' outputs)
        if rel not in locked:
            new.append(rel)
            continue
        record = locked[rel]
        name = record.get("hash", "md5-dos2unix")
        key = (rel, name)
        if key not in hashes:
            file = root / rel
            if inside is not None:  # a code directory, e.g. imbalance/training
                hashes[key] = _dir_md5(file, inside, name)
            else:
                hashes[key] = _file_md5(file, name) if file.is_file() else None
        if hashes[key] is None:
            missing.append(rel)
        elif hashes[key] != record.get("md5"):
            changed.append(rel)
    reasons = []
    if changed:
        reasons.append(f"changed {', '.join(sorted(changed))}")
    if new:
        reasons.append(f"not in dvc.lock (new or renamed) {', '.join(sorted(new))}")
    if missing:
        reasons.append(f"missing {', '.join(sorted(missing))}")
    return reasons


def _out_reasons(
    root: Path,
    stage: Mapping[str, Any],
    entry: Mapping[str, Any],
    carried: set[str],
    hashes: dict[tuple[str, str], str | None],
) -> list[str]:
    """(d) Committed outputs (``cache: false``: metrics, figures, plot data) whose bytes
    differ from what dvc.lock recorded: results edited, or copied in, after the run; and
    committed outputs that are absent: a deleted report must not pass as current."""
    locked = {o.get("path"): o for o in entry.get("outs") or []}
    edited, missing = [], []
    outs = [*(stage.get("outs") or []), *(stage.get("metrics") or []), *(stage.get("plots") or [])]
    uncached = _uncached(outs)
    for path in _paths(outs):
        rel = Path(path).as_posix().rstrip("/")
        record = locked.get(rel)
        if not record or not record.get("md5"):
            continue
        name = record.get("hash", "md5-dos2unix")
        file = root / rel
        if not file.exists():
            # only outputs git is meant to carry: cached ones live in DVC's cache, and a
            # clean clone has none of them
            if rel in uncached and not _git_ignored(root, rel):
                missing.append(rel)
            continue
        if rel in carried and file.is_file():
            key = (rel, name)
            if key not in hashes:
                hashes[key] = _file_md5(file, name)
            if hashes[key] != record["md5"]:
                edited.append(rel)
        elif (inside := _carried_dir(root, rel, carried)) is not None and _dir_md5(
            file, inside, name
        ) != record["md5"]:
            edited.append(rel)
    reasons = []
    if edited:
        reasons.append(
            f"committed outputs differ from dvc.lock (edited after the run?) {', '.join(edited)}"
        )
    if missing:
        reasons.append(f"committed outputs missing (deleted?) {', '.join(missing)}")
    return reasons


def _uncached(outs: Iterable[Any]) -> set[str]:
    """Paths of the outputs declared ``cache: false``: the ones git carries."""
    found = set()
    for item in outs:
        if isinstance(item, Mapping):
            for path, options in item.items():
                if isinstance(options, Mapping) and options.get("cache") is False:
                    found.add(Path(path).as_posix().rstrip("/"))
    return found


def _git_ignored(root: Path, rel: str) -> bool:
    """Does git ignore ``rel`` (an output some setup keeps out of git on purpose)?"""
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", rel], cwd=root, capture_output=True
    )
    return proc.returncode == 0


def _carried_dir(root: Path, rel: str, carried: set[str]) -> list[Path] | None:
    """The files of directory ``rel`` as DVC hashes them (minus ``__pycache__``, which
    .dvcignore leaves out), if git carries every one of them; else None.

    A folder that holds nothing but the ``.gitignore`` DVC writes for the outputs inside
    it (``models/scratch/seed0`` in a clean clone) is another stage's output, not code.
    """
    directory = root / rel
    if not directory.is_dir():
        return None
    files = sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    if all(p.name == ".gitignore" for p in files):
        return None
    inside = [p.relative_to(root).as_posix() for p in files]
    return files if all(p in carried for p in inside) else None


def _dir_md5(directory: Path, files: list[Path], name: str) -> str:
    """DVC's directory hash: the md5 of the JSON list of ``{md5, relpath}`` sorted by
    relpath (``dvc_data.hashfile.tree.Tree.as_bytes``), with ``.dir`` appended."""

    entries = [
        {"md5": _file_md5(p, name), "relpath": p.relative_to(directory).as_posix()} for p in files
    ]
    entries.sort(key=lambda e: e["relpath"])
    text = json.dumps(entries, sort_keys=True).encode()
    return hashlib.md5(text, usedforsecurity=False).hexdigest() + ".dir"


def _param_keys(params: Iterable[Any] | None) -> dict[str, list[str] | None]:
    """``{file: keys}`` of a stage's ``params`` list (``None``: the whole file)."""
    files: dict[str, list[str] | None] = {}
    for item in params or []:
        if isinstance(item, str):
            keys = files.setdefault(DEFAULT_PARAMS_FILE, [])
            if keys is not None:
                keys.append(item)
        else:
            for file, keys in item.items():
                files[file] = None if not keys else [*(files.get(file) or []), *keys]
    return files


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    """Nested dicts flattened to ``{dotted key: value}``; lists are leaves."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_leaves(sub, f"{prefix}.{key}"))
        return out
    return {prefix: list(value) if isinstance(value, tuple) else value}


def _short(value: Any) -> str:
    text = "(absent)" if value is _MISSING else json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _param_reasons(
    root: Path, stage: Mapping[str, Any], entry: Mapping[str, Any], cache: dict[str, Any]
) -> list[str]:
    diffs = []
    locked_files = entry.get("params") or {}
    for file, keys in _param_keys(stage.get("params")).items():
        actual = _read_params(root, file, keys, cache)
        locked = locked_files.get(file) or {}
        for key in keys or sorted({*actual, *locked}):
            now = _leaves(actual[key], key) if key in actual else {key: _MISSING}
            then = _leaves(locked[key], key) if key in locked else {key: _MISSING}
            for leaf in sorted({*now, *then}):
                old, new = then.get(leaf, _MISSING), now.get(leaf, _MISSING)
                if old != new:
                    diffs.append(f"{leaf} {_short(old)} -> {_short(new)}")
    return [f"params {', '.join(diffs)}"] if diffs else []


def _downstream(
    stages: Mapping[str, Mapping[str, Any]],
    stale: set[str],
    moving: set[str],
    unchanged: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """Current stages that (transitively) consume an output of a ``moving`` stale stage
    (one whose re-run changes its outputs; the others are stale in dvc.lock only), except
    through a dependency in ``unchanged`` (a file the re-run writes again as it is).

    A dependency consumes an output when the paths are equal or one contains the other
    (``compare`` depends on the directory ``metrics/runs`` that holds ``evaluate@<s>``'s
    ``metrics/runs/seed<s>``), the same rule DVC builds its graph by.
    """
    if not moving:
        return []
    at: dict[str, set[str]] = {}  # output path -> producers
    under: dict[str, set[str]] = {}  # directory -> producers of outputs inside it
    for name, s in stages.items():
        for out in _paths(
            [*(s.get("outs") or []), *(s.get("metrics") or []), *(s.get("plots") or [])]
        ):
            parts = Path(out).as_posix().strip("/").split("/")
            at.setdefault("/".join(parts), set()).add(name)
            for i in range(1, len(parts)):
                under.setdefault("/".join(parts[:i]), set()).add(name)
    consumers: dict[str, set[str]] = {name: set() for name in stages}
    for name, stage in stages.items():
        for dep in _paths(stage.get("deps")):
            if Path(dep).as_posix() in unchanged:
                continue
            parts = Path(dep).as_posix().strip("/").split("/")
            producers = set(under.get("/".join(parts), ()))
            for i in range(1, len(parts) + 1):
                producers |= at.get("/".join(parts[:i]), set())
            for producer in producers - {name}:
                consumers[producer].add(name)
    seen: set[str] = set()
    todo = list(moving)
    while todo:
        for consumer in consumers[todo.pop()]:
            if consumer not in seen:
                seen.add(consumer)
                todo.append(consumer)
    return [name for name in stages if name in seen and name not in stale]


# ----------------------------------------------------------------------------- names


def _group(stage: str) -> str:
    return stage.split("@", 1)[0]


def _compress(names: list[str], every: list[str]) -> str:
    """``train@* (60 stages)``, ``train@focal-* (5 stages)`` or the names themselves."""
    group = _group(names[0])
    members = [n for n in every if _group(n) == group and "@" in n]
    if len(names) == 1:
        return names[0]
    if set(names) == set(members):
        return f"{group}@* ({len(names)} stages)"
    keys = [n.split("@", 1)[1] for n in names]
    head = _common_prefix(keys)
    tail = _common_prefix([k[len(head) :][::-1] for k in keys])[::-1]
    pattern = f"{group}@{head}*{tail}"
    matched = [
        n
        for n in members
        if n.split("@", 1)[1].startswith(head)
        and n.split("@", 1)[1].endswith(tail)
        and len(n.split("@", 1)[1]) >= len(head) + len(tail)
    ]
    if (head or tail) and set(matched) == set(names):
        return f"{pattern} ({len(names)} stages)"
    if len(names) <= 4:
        return ", ".join(names)
    return f"{', '.join(names[:3])} and {len(names) - 3} more {group}@ stages"


def _common_prefix(items: list[str]) -> str:
    """The longest common leading substring (of stage-name keys, not paths)."""
    first, last = min(items), max(items)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    return first[:i]


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m imbalance.tools.lockcheck",
        description="Fail when dvc.lock (the record behind the committed results) does not "
        "match the workspace's code and params. No data needed.",
    )
    parser.add_argument("root", nargs="?", default=".", help="project root (default: .)")
    args = parser.parse_args(argv)
    result = check(args.root)
    print(result.report())
    if not result.ok:
        sys.exit(1)


if __name__ == "__main__":
    from imbalance.cli import run

    run(main)
