"""Opt-in stage profiling for the benchmark (bench/).

DVC runs every stage as a fresh process, so the benchmark cannot time stages from the
inside of one Python process. With ``IMBALANCE_PROFILE=<file>`` in the environment, each
stage appends JSON lines to that file: events (``mark``) with the seconds since the
process started (imports and data loading included; for a warm stage, see
:mod:`imbalance.runtime.warm`, since its client process started), and at exit its wall time and
peak resident memory. Without the variable every call is a no-op costing one dict lookup.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

_ENV = "IMBALANCE_PROFILE"
#: Set in a warm child (:mod:`imbalance.runtime.warm`): the stage started with its client process.
_origin: dict[str, float] = {}


def process_start_unix() -> float:
    """When this process was created (Unix time), from the kernel's own record (Linux)."""
    if "t0" in _origin:
        return _origin["t0"]
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat") as fh:
        start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return time.time() - (uptime - start_ticks / ticks)


def set_origin(t0: float) -> None:
    """In a warm child: count stage time from ``t0`` (its client's start), tag as warm."""
    _origin["t0"] = t0


def enabled() -> bool:
    return bool(os.environ.get(_ENV))


def mark(event: str, **fields: object) -> None:
    """Append one event line; ``t`` is seconds since process start."""
    path = os.environ.get(_ENV)
    if not path:
        return
    record = {
        "stage": " ".join(sys.argv[1:]) or "?",
        "module": sys.modules["__main__"].__spec__.name
        if getattr(sys.modules["__main__"], "__spec__", None)
        else sys.argv[0],
        "event": event,
        "t": round(time.time() - process_start_unix(), 4),
        "warm": "t0" in _origin,
        "unix": round(time.time(), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **fields,
    }
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
