"""Benchmark: where the time of a study goes, on the offline CIFAR-10 copy.

``python -m bench`` (or ``./dev.sh bench``) builds a scratch copy of this project under
``bench/runs/project`` (git-ignored), pointed at ``../shared/data/cifar10-jpeg.tar.gz``
with one seed and the study's seven remedies, and measures, each figure the median of
``--runs`` repetitions:

- the limit: ``fit`` throughput of the 15,458-parameter model on in-memory tensors;
- limit, ``dvc repro --force`` and reference are measured in rounds, and each ratio
  within its round (this machine's speed drifts by 10-40 % within minutes);
- fetch + split wall time from the archive;
- ``dvc repro --force`` of the whole study, and per stage its wall time, the time before
  its first training step, its in-stage training throughput (as a ratio of the limit)
  and its peak resident memory (from ``IMBALANCE_PROFILE``, see imbalance/runtime/profile.py);
- the plain-Keras reference: one Python process, no DVC, that does the same work — the
  same stage functions (fetch, split, the seven trainings, evaluate, compare) called in
  order in a plain copy of the project — timed from process start to exit, with the
  training part alone beside it (deterministic, so the optimizer steps match the
  pipeline's — checked);
- DVC's own share: ``dvc repro --force`` wall time minus the stage processes' wall times;
- a no-op ``dvc repro``.

It prints a table and writes ``bench/results.json``. It is not a test: it asserts
nothing, it reports figures and the targets they are read against. bench/README.md says
what each figure means and how to read it.

Paths inside a project (params, data, predictions) come from
:class:`imbalance.layout.Layout`, as the stages' own do, so the benchmark reads what
the stages wrote wherever the layout puts it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

from imbalance.layout import Layout

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
SOURCE_SHA256 = "6c9b930289b4e49b2ec38c4eec6d8f11a272ce9d803b1c98018fbcc8682241ce"
STUDY = ["balanced", "baseline", "class_weight", "oversample", "undersample"]
STUDY_RETRAIN = ["two_phase_oversample", "two_phase_undersample"]
#: The one seed the benchmark's projects are given.
SEED = 0
TARGETS = {
    "in_stage_throughput_ratio": ">= 0.80 of the limit, every remedy",
    "repro_vs_reference": "<= 1.15",
    "noop_repro_s": "<= 3 s",
    "peak_rss_mib": "<= 2048 MiB, every stage",
    "fetch_split_s": "<= 30 s",
}


def sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run a command, fail loudly, return its wall time."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(
            f"error: `{' '.join(cmd)}` failed in {cwd}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return time.perf_counter() - start


def copy_tree(dst: Path) -> None:
    """This project's files into ``dst``, without the lock (a scratch project's lock must
    record only its own stages), the benchmark and the tests."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in files:
        src = ROOT / rel
        if rel.startswith(("bench/", "tests/")) or rel == "dvc.lock" or not src.is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)


def prepare(work: Path, source: Path, max_steps: int | None) -> Path:
    """A scratch git + DVC project: this code, one seed, the study's seven remedies."""
    project = work / "project"
    copy_tree(project)
    layout = Layout(project)
    params = yaml.safe_load(layout.params.read_text())
    params["seeds"] = [SEED]
    params["data"]["sources"]["bench"] = {"location": str(source), "sha256": SOURCE_SHA256}
    params["data"]["source"] = "bench"
    params["remedies"] = {k: params["remedies"][k] for k in STUDY}
    params["retrain"] = {k: params["retrain"][k] for k in STUDY_RETRAIN}
    params["compare"]["reference"] = "baseline"
    if max_steps:  # a multiple of train.check_every, else every stage refuses the params
        params["train"]["max_steps"] = max_steps
    layout.params.write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-qm",
            "bench",
        ],
    ):
        sh(cmd, project)
    return project


def read_profile(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def per_stage(events: list[dict]) -> dict[str, dict[str, float]]:
    """Fold the profile events of one repro into one row per stage."""
    rows: dict[str, dict[str, float]] = defaultdict(dict)
    for e in events:
        key = f"{e['module'].removeprefix('stages.')} {e['stage']}".strip()
        row = rows[key]
        row["peak_rss_mib"] = max(row.get("peak_rss_mib", 0.0), e["peak_rss_mib"])
        if e["event"] == "exit":
            row["wall_s"] = e["t"]
        elif e["event"] == "first_step":
            row["first_step_s"] = e["t"]
        elif e["event"] == "train_throughput":
            row["images_per_s"] = e["images_per_s"]
            row["steps"] = e.get("steps", 0)
    return rows


def median_rows(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key in runs[0]:
        fields = {f for r in runs for f in r.get(key, {})}
        out[key] = {
            f: round(statistics.median(r[key][f] for r in runs if f in r.get(key, {})), 3)
            for f in sorted(fields)
        }
    return out


def limit_throughput(project: Path, batch_size: int, epochs: int) -> float:
    """Images/s of plain `fit` on in-memory tensors (batched once, cached, prefetched, no
    shuffle, no validation, no callbacks but a timer): nothing in the pipeline beats it."""
    data = Layout(project).data_dir(SEED) / "train_balanced.npz"
    code = f"""
import json, time, numpy as np, keras, tensorflow as tf
from imbalance import params
from imbalance.training import model
p = params.load()
keras.utils.set_random_seed({SEED})
d = np.load({str(data)!r})
x = d["x"].astype("float32") / 255.0
y = keras.utils.to_categorical(d["y"], 2)
m = model.build_model(p.model, {SEED})
m.compile(optimizer=keras.optimizers.Adam(p.train.learning_rate), loss="categorical_crossentropy")
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch({batch_size}).cache()
ds = ds.prefetch(tf.data.AUTOTUNE)
m.fit(ds, epochs={epochs}, verbose=0, callbacks=[T()])
print(json.dumps([len(x) / t for t in times[1:]]))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: limit measurement failed:\n{out.stderr[-2000:]}")
    return statistics.median(json.loads(out.stdout.strip().splitlines()[-1]))


def reference(project: Path, work: Path) -> tuple[float, float, dict[str, int]]:
    """One process, no DVC, the same work: every stage function of the pipeline, in order.

    Runs in a plain copy of the scratch project (no git, no DVC) so that it cannot touch
    the DVC project's outputs. Returns (process wall time, training time, steps trained).
    """
    plain = work / "reference"
    params = yaml.safe_load(Layout(project).params.read_text())
    remedies = [*params["remedies"], *params["retrain"]]
    predictions = {r: str(Layout(plain).predictions(r, SEED)) for r in remedies}
    steps = [["stages.fetch"], ["stages.split"]]
    steps += [["stages.train", r, str(SEED)] for r in remedies]
    steps += [["stages.evaluate", str(SEED)], ["stages.compare"]]
    code = f"""
import importlib, json, sys, time
import numpy as np
train_s = 0.0
for argv in {steps!r}:
    sys.argv = argv
    start = time.perf_counter()
    importlib.import_module(argv[0]).main()
    if argv[0] == "stages.train":
        train_s += time.perf_counter() - start
steps = {{r: int(np.load(path)["steps_trained"]) for r, path in {predictions!r}.items()}}
print(json.dumps({{"train_s": train_s, "steps": steps}}))
"""
    copy_tree(plain)
    shutil.copy2(Layout(project).params, Layout(plain).params)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=plain, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"error: reference run failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return wall, result["train_s"], result["steps"]


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="repetitions of each cheap figure (median)")
    ap.add_argument(
        "--repro-runs", type=int, default=3, help="repetitions of the full dvc repro --force"
    )
    ap.add_argument("--source", type=Path, default=SOURCE, help="the offline CIFAR-10 JPEG archive")
    ap.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="override train.max_steps (a multiple of train.check_every)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        default=ROOT / "bench" / "runs",
        help="where the scratch projects go (emptied first)",
    )
    ap.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results.json", help="the results file"
    )
    args = ap.parse_args()
    if not args.source.is_file():
        sys.exit(f"error: {args.source}: the offline CIFAR-10 copy is missing; pass --source PATH")

    # Absolute: commands run inside the scratch projects are handed paths into them.
    work = args.work.resolve()
    project = prepare(work, args.source.resolve(), args.max_steps)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    dvc = [sys.executable, "-m", "dvc"]
    p = yaml.safe_load(Layout(project).params.read_text())
    print(f"scratch project: {project}", file=sys.stderr)

    fetch_split = []
    for i in range(args.runs):
        fetch_split.append(sh([*dvc, "repro", "--force", "split"], project, env))
        print(f"fetch+split run {i + 1}: {fetch_split[-1]:.1f} s", file=sys.stderr)

    # Limit, pipeline and reference are measured in turn, and every ratio within its own
    # round: this machine's speed drifts by 10-40 % over minutes, which would otherwise
    # land on one side of a ratio only.
    limits, repro_walls, stage_runs, dvc_share, ref_walls, ref_trains, ratios = (
        [] for _ in range(7)
    )
    for i in range(args.repro_runs):
        limits.append(limit_throughput(project, p["train"]["batch_size"], 4))
        prof = Path(tempfile.mkstemp(prefix="bench-profile-", suffix=".jsonl")[1])
        repro_walls.append(
            sh([*dvc, "repro", "--force"], project, dict(env, IMBALANCE_PROFILE=str(prof)))
        )
        stage_runs.append(per_stage(read_profile(prof)))
        prof.unlink()
        dvc_share.append(repro_walls[-1] - sum(r["wall_s"] for r in stage_runs[-1].values()))
        for row in stage_runs[-1].values():
            if "images_per_s" in row:
                row["throughput_ratio"] = row["images_per_s"] / limits[-1]
        ref_wall, ref_train, ref_steps = reference(project, work)
        ref_walls.append(ref_wall)
        ref_trains.append(ref_train)
        ratios.append(repro_walls[-1] / ref_wall)
        print(
            f"round {i + 1}: limit {limits[-1]:.0f} images/s, dvc repro --force "
            f"{repro_walls[-1]:.1f} s, reference {ref_wall:.1f} s ({ref_train:.1f} s "
            f"training), ratio {ratios[-1]:.2f}",
            file=sys.stderr,
        )
    stages = median_rows(stage_runs)
    limit = statistics.median(limits)
    noop = [sh([*dvc, "repro"], project, env) for _ in range(args.runs)]

    pipeline_steps = {k.split()[1]: int(v["steps"]) for k, v in stages.items() if "steps" in v}
    results = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "source": str(args.source),
        "runs": args.runs,
        "repro_runs": args.repro_runs,
        "limit_images_per_s": round(limit, 1),
        "limit_images_per_s_rounds": [round(x, 1) for x in limits],
        "fetch_split_s": round(statistics.median(fetch_split), 2),
        "repro_force_s": round(statistics.median(repro_walls), 2),
        "reference_s": round(statistics.median(ref_walls), 2),
        "reference_training_s": round(statistics.median(ref_trains), 2),
        "dvc_share_s": round(statistics.median(dvc_share), 2),
        "repro_vs_reference": round(statistics.median(ratios), 3),
        "repro_vs_reference_pairs": [round(r, 3) for r in ratios],
        "reference_steps": ref_steps,
        "pipeline_steps": pipeline_steps,
        "steps_match": ref_steps == pipeline_steps,
        "noop_repro_s": round(statistics.median(noop), 2),
        "max_peak_rss_mib": max(r.get("peak_rss_mib", 0) for r in stages.values()),
        "stages": stages,
        "targets": TARGETS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print_table(results)


def print_table(r: dict) -> None:
    print(
        f"machine: {r['machine']['cpu_count']} cores, {r['machine']['processor']}, "
        f"Python {r['machine']['python']}"
    )
    print(
        f"figures are medians of {r['runs']} runs ({r['repro_runs']} rounds of limit, "
        "full repro and reference; ratios within each round)\n"
    )
    lines = [
        ("limit: fit on in-memory tensors", f"{r['limit_images_per_s']:.0f} images/s", ""),
        (
            "fetch + split from the JPEG archive",
            f"{r['fetch_split_s']:.1f} s",
            TARGETS["fetch_split_s"],
        ),
        ("dvc repro --force (7 remedies, 1 seed)", f"{r['repro_force_s']:.1f} s", ""),
        ("plain-Keras reference (1 process)", f"{r['reference_s']:.1f} s", ""),
        ("  of which training", f"{r['reference_training_s']:.1f} s", ""),
        ("DVC's share of the repro (outside stages)", f"{r['dvc_share_s']:.1f} s", ""),
        (
            "repro / reference (median of rounds)",
            f"{r['repro_vs_reference']:.2f}",
            TARGETS["repro_vs_reference"],
        ),
        ("same optimizer steps as the pipeline", str(r["steps_match"]), ""),
        ("no-op dvc repro", f"{r['noop_repro_s']:.2f} s", TARGETS["noop_repro_s"]),
        ("max peak RSS of a stage", f"{r['max_peak_rss_mib']:.0f} MiB", TARGETS["peak_rss_mib"]),
    ]
    w = max(len(a) for a, _, _ in lines)
    for a, b, c in lines:
        print(f"{a:<{w}}  {b:>16}  {c}")
    print()
    cols = ("wall s", "1st step s", "images/s", "of limit", "steps", "peak MiB")
    head = f"{'stage':<34} " + " ".join(f"{c:>10}" for c in cols)
    print(head)
    print("-" * len(head))
    for name, row in r["stages"].items():
        fields = [("wall_s", ".1f"), ("first_step_s", ".1f"), ("images_per_s", ".0f")]
        fields += [("throughput_ratio", ".2f"), ("steps", ".0f"), ("peak_rss_mib", ".0f")]
        cells = " ".join(f"{row[f]:>10{fmt}}" if f in row else f"{'-':>10}" for f, fmt in fields)
        print(f"{name:<34} {cells}")


if __name__ == "__main__":
    main()
