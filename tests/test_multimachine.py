"""The study across machines, exactly as .github/workflows/study.yaml runs it.

The workflow's steps that carry an ``id`` hold every DVC command of the multi-machine
run; this test reads them from the workflow file and runs them with bash, as GitHub's
runner would, on one machine: a bare Git repository stands for GitHub, a local directory
for the DVC remote (``DVC_REMOTE_URL``), a fresh clone for every job. So the test fails
when the workflow's commands stop working, not only when a copy of them does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import PROJECT_ROOT, TinyProject, ok, tool_env
from conftest import TWO_REMEDY_GRID as GRID
from conftest import TWO_REMEDY_TRAIN_STAGES as TRAIN_STAGES

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "study.yaml"
RESTORED = re.compile(r"Stage '([^']+)' is cached - skipping run")
TRAINED = re.compile(r"Running stage '((?:re)?train@[^']+)'")


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def script(job: str, step_id: str) -> str:
    """The ``run`` text of the step ``step_id`` of ``job``."""
    for step in workflow()["jobs"][job]["steps"]:
        if step.get("id") == step_id:
            return step["run"]
    raise AssertionError(f"{WORKFLOW.name}: job {job} has no step with id {step_id}")


def run_step(
    where: Path, job: str, step_id: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run one step's script as GitHub's runner does (`bash --noprofile --norc -eo
    pipefail`), in ``where``, with the job's environment."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script(job, step_id)],
        cwd=where,
        env={**tool_env(), **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def clone(origin: Path, dest: Path) -> Path:
    ok(
        subprocess.run(
            ["git", "clone", "-q", str(origin), str(dest)], capture_output=True, text=True
        )
    )
    return dest


def metrics_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "metrics").rglob("*.json"))
    }


def test_workflow_steps_are_plain_shell_and_the_jobs_fit_together() -> None:
    """What the runner-free test below relies on: the steps it runs use environment
    variables only (no `${{ }}` for bash to choke on), and the jobs are wired as described."""
    jobs = workflow()["jobs"]
    steps = {
        "plan": ["plan"],
        "seed": ["remote", "study", "push"],
        "assemble": ["remote", "assemble", "check"],
    }
    for job, ids in steps.items():
        for step_id in ids:
            assert "${{" not in script(job, step_id), (job, step_id)
    assert jobs["seed"]["needs"] == "plan"
    assert jobs["seed"]["strategy"]["matrix"]["seed"] == "${{ fromJSON(needs.plan.outputs.seeds) }}"
    assert set(jobs["assemble"]["needs"]) == {"plan", "seed"}
    push = next(s for s in jobs["seed"]["steps"] if s.get("id") == "push")
    assert push["if"].startswith("always()")  # a failed run still keeps what finished
    secrets = {"DVC_REMOTE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert all(f"secrets.{name}" in workflow()["env"][name] for name in secrets)


@pytest.mark.slow
def test_seed_jobs_push_and_the_assemble_job_trains_nothing(
    tiny_project: TinyProject, tmp_path: Path
) -> None:
    lead = tiny_project
    lead.set_params(GRID)
    ok(lead.git("commit", "-qam", "2 seeds x 2 remedies"))
    reference = tmp_path / "reference"
    shutil.copytree(lead.root, reference, symlinks=True)
    origin = tmp_path / "origin.git"
    ok(lead.run("git", "clone", "-q", "--bare", str(lead.root), str(origin)))
    outputs = tmp_path / "github-output"
    env = {
        "SOURCE": "tiny",  # the data.sources entry the tiny project has
        "DVC_REMOTE_URL": str(tmp_path / "dvc-remote"),  # created by the first push
        "GITHUB_OUTPUT": str(outputs),
        "SEEDS_INPUT": "",
    }

    plan = run_step(clone(origin, tmp_path / "plan"), "plan", "plan", env)
    ok(plan)
    seeds = re.search(r"^seeds=(.*)$", outputs.read_text(), re.MULTILINE)
    assert seeds and seeds.group(1) == "[0,1]"

    for seed in (0, 1):  # the matrix: one fresh runner per seed
        runner = clone(origin, tmp_path / f"seed{seed}")
        job = {**env, "SEED": str(seed), "EXP_NAME": f"study-1234-seed{seed}"}
        for step_id in ("remote", "study", "push"):
            ok(run_step(runner, "seed", step_id, job))

    runner = clone(origin, tmp_path / "assemble")
    job = {**env, "SEEDS": seeds.group(1)}
    ok(run_step(runner, "assemble", "remote", job))
    ok(run_step(runner, "assemble", "assemble", job))
    log = (runner / "assemble.log").read_text()
    assert set(RESTORED.findall(log)) >= TRAIN_STAGES, log
    assert not TRAINED.findall(log), log
    check = run_step(runner, "assemble", "check", job)
    ok(check)
    assert "restored from the run-cache" in check.stdout

    ok(TinyProject(reference, lead.source).dvc("repro"))
    got, want = metrics_bytes(runner), metrics_bytes(reference)
    assert want and got == want

    # "Re-run failed jobs": a seed job on a fresh runner restores everything pushed before.
    again = clone(origin, tmp_path / "seed0-again")
    job = {**env, "SEED": "0", "EXP_NAME": "study-1235-seed0"}
    ok(run_step(again, "seed", "remote", job))
    rerun = run_step(again, "seed", "study", job)
    ok(rerun)
    assert {"train@baseline-0", "train@class_weight-0"} <= set(RESTORED.findall(rerun.stdout))
    assert not TRAINED.findall(rerun.stdout), rerun.stdout
