#!/usr/bin/env bash
# One entry point for a fresh clone: sets up .venv from the pinned requirements (only
# when they changed), then runs the task. Needs nothing but Python 3.11 and bash.
#   ./dev.sh repro            set up, then `dvc repro` (the whole study)
#   ./dev.sh repro --jobs N   set up, then the study on N workers: one DVC experiment per seed
#                             in DVC's queue, then `dvc repro` assembles it from the run-cache
#                             (python -m imbalance.tools.parallel; docs/parallel.md)
#   ./dev.sh repro -S K=V     set up, then `dvc exp run -S K=V` (the study with changed params,
#                             e.g. -S data.source=official off the development machines)
#   ./dev.sh predict IMAGE... set up, then predict cars in your own images (--help)
#   ./dev.sh decide [--jobs N] [--max-seeds K] [--questions a,d] [--futility F] [--plan]
#                             set up, then the sequential study: repro, check the primary
#                             questions, append a seed block to blocks.yaml, repro ... (python -m imbalance.tools.decide)
#   ./dev.sh test             set up, then the whole test suite on 2 processes (pytest-xdist)
#   ./dev.sh test --fast      the same without the tests marked slow (training, DVC, servers):
#                             every module, in about 2 minutes (tests/conftest.py has the rule)
#   ./dev.sh report BASE OUT  set up, then the PR report of BASE vs the workspace
#   ./dev.sh bench            set up, then the benchmark (see bench/README.md)
#   ./dev.sh lint             ruff check + format check
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

setup() {
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ] \
      || [ constraints.txt -nt "$stamp" ]; then
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
      || { echo "error: $PYTHON is not Python 3.11; set PYTHON=/path/to/python3.11" >&2; exit 2; }
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r requirements-dev.txt -c constraints.txt
    touch "$stamp"
  fi
  export PATH="$PWD/$VENV/bin:$PATH" VIRTUAL_ENV="$PWD/$VENV"
}

# Does the repro command line ask for workers (--jobs N, --jobs=N, -j N, -jN)? `dvc repro`
# itself has no --jobs, so the option is unambiguous.
wants_jobs() {
  local arg
  for arg in "$@"; do
    case "$arg" in --jobs | --jobs=* | -j | -j[0-9]*) return 0 ;; esac
  done
  return 1
}

# Does the repro command line change params (-S K=V, --set-param K=V)? `dvc repro` has no
# such option; `dvc exp run` is `dvc repro` with it.
sets_params() {
  local arg
  for arg in "$@"; do
    case "$arg" in -S | -S* | --set-param | --set-param=*) return 0 ;; esac
  done
  return 1
}

task=${1:-}
[ $# -gt 0 ] && shift
case "$task" in
  repro)
    setup
    if wants_jobs "$@"; then
      sets_params "$@" && { echo "error: --jobs takes no -S; set the params in params.yaml" >&2; exit 2; }
      python -m imbalance.tools.parallel "$@"
    elif sets_params "$@"; then dvc exp run "$@"
    else dvc repro "$@"; fi
    ;;
  decide) setup; python -m imbalance.tools.decide "$@" ;;
  predict) setup; python -m imbalance.training.predict "$@" ;;
  test)
    setup
    # -n: processes for the tests (TEST_WORKERS=0 runs them in this one); --fast: -m "not slow"
    set -- -n "${TEST_WORKERS:-2}" "$@"
    if [ "${3:-}" = --fast ]; then set -- "$1" "$2" -m "not slow" "${@:4}"; fi
    python -m pytest "$@"
    ;;
  report) setup; python -m imbalance.tools.report "$@" ;;
  bench) setup; python -m bench "$@" ;;
  lint) setup; ruff check . && ruff format --check . ;;
  *) echo "usage: ./dev.sh repro [--jobs N | -S K=V]|decide [--jobs N] [--max-seeds K]|predict|test [--fast]|report|bench|lint [args...]" >&2; exit 2 ;;
esac
