"""The layer rule and the code style, enforced by the linter inside the test suite.

CI runs the README's test command only, so the lint runs here: ruff's banned-imports rule
(TID251, configured in pyproject.toml) keeps TensorFlow and Keras inside
``imbalance/training``; ``ruff format --check`` keeps the formatting uniform.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"


def ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUFF), *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_ruff_check_and_format_pass() -> None:
    check = ruff("check", ".")
    assert check.returncode == 0, check.stdout[-4000:]
    fmt = ruff("format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout[-4000:]


@pytest.mark.parametrize(
    "statement", ["import tensorflow as tf", "from keras import layers", "import dvclive.keras"]
)
@pytest.mark.parametrize(
    "module", ["imbalance/analysis/new.py", "imbalance/data/new.py", "imbalance/tools/new.py"]
)
def test_tensorflow_outside_the_training_package_fails_the_lint(statement: str, module: str):
    result = ruff("check", "--select", "TID251", "--stdin-filename", module, "-", stdin=statement)
    assert result.returncode == 1 and "TID251" in result.stdout, result.stdout


def test_tensorflow_inside_the_training_package_is_allowed() -> None:
    source = "import tensorflow as tf\n\nprint(tf)\n"
    result = ruff("check", "--stdin-filename", "imbalance/training/new.py", "-", stdin=source)
    assert result.returncode == 0, result.stdout
