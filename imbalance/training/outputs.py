"""How a training run writes its outputs: byte-deterministic model files, no stale temporaries.

DVC hashes every output, so a re-run that reproduces a model must rewrite the same bytes
(or everything downstream re-runs), and nothing but the outputs may appear in the
directories other stages depend on.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbalance import files

if TYPE_CHECKING:
    import keras

#: A fixed zip timestamp (the earliest zip can store) for byte-deterministic model files.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_model(model: keras.Model, path: Path) -> None:
    """Save atomically, with byte-identical files for identical weights.

    Keras stamps ``date_saved`` into metadata.json, the current time into every zip entry
    and memory addresses (``shared_object_id``) into config.json; all are replaced by
    constants, so a re-run that reproduces the model rewrites the same bytes and DVC
    invalidates nothing downstream.
    """

    def write(tmp: Path) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp) as zf:
            entries = [(info.filename, zf.read(info)) for info in zf.infolist()]
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in sorted(entries):
                if name == "metadata.json":
                    data = _fixed_metadata(data)
                elif name == "config.json":
                    data = _fixed_config(data)
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)

    files.write_with(path, write, suffix=".keras")


def _fixed_metadata(data: bytes) -> bytes:
    meta = json.loads(data)
    meta["date_saved"] = "1980-01-01@00:00:00"
    return json.dumps(meta, sort_keys=True).encode()


def _fixed_config(data: bytes) -> bytes:
    """Renumber ``shared_object_id`` (Python ``id()``s) 0, 1, ... in order of appearance.

    The ids only tie together references to one shared object inside this file, so any
    consistent renumbering loads the same model.
    """
    ids: dict[int, int] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ids.setdefault(v, len(ids)) if k == "shared_object_id" else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return json.dumps(walk(json.loads(data))).encode()


def remove_stale_temporaries(*outputs: Path) -> None:
    """Delete what a killed earlier run of this stage left beside its outputs.

    :mod:`imbalance.files` writes ``.<name>.<random>.tmp*`` next to each output and renames
    it into place; a SIGKILL skips the clean-up. Left alone, such files would sit in
    ``models/scratch/seed<s>/`` and ``training/`` — directories other stages depend on —
    and change their hashes. Only this stage writes these names, and DVC never runs it
    twice at once, so removing them is safe.
    """
    for out in outputs:
        if not out.parent.is_dir():
            continue
        for stale in out.parent.glob(f".{out.name}.*"):
            if ".tmp" in stale.name or stale.name == f".{out.name}.old":
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
