"""HTTP(S) download of ``data.source``, and the SHA-256 every source file is checked by.

A URL is downloaded (progress bar on stderr) into a private temporary directory that is
removed afterwards, hashed while it streams, then read like a local file. Nothing is
cached between runs, so an interrupted download can never be taken for a good one later
(DVC caches the decoded ``data/raw`` instead). A body over ``data.max_extract_bytes``,
shorter than its Content-Length, or broken off is an error, and the partial file goes
with the temporary directory.

Its own module because transport failures (HTTP status, network, truncation) are a
concern of their own, unrelated to what the bytes turn out to hold.
"""

from __future__ import annotations

import hashlib
import http.client
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from imbalance.cli import UserError

READ_CHUNK = 1 << 20  # bytes per read from the connection
DOWNLOAD_TIMEOUT_S = 60


def is_url(source: str) -> bool:
    """Whether ``source`` is downloaded (http or https) rather than read from disk."""
    return urllib.parse.urlsplit(source).scheme in ("http", "https")


@contextmanager
def downloaded(url: str, max_bytes: int, *, progress: bool = True) -> Iterator[tuple[Path, str]]:
    """Download ``url`` into a private temporary directory; yield (its path, its SHA-256).

    The directory and everything in it are removed when the block ends, however it ends,
    so nothing of this run -- complete or partial -- is ever read by a later one.
    """
    with tempfile.TemporaryDirectory(prefix="imbalance-fetch-") as tmp:
        name = PurePosixPath(urllib.parse.urlsplit(url).path).name or "download"
        path = Path(tmp) / name
        digest = download(url, path, max_bytes, progress=progress)
        yield path, digest


def download(url: str, dest: Path, max_bytes: int, *, progress: bool = True) -> str:
    """Stream ``url`` into ``dest`` (a private temp path) and return its SHA-256.

    A body shorter than its Content-Length, a broken connection or a body over
    ``max_bytes`` is an error; the caller's temporary directory then disappears with the
    partial file, so no later run can mistake it for a complete download.
    """
    from tqdm import tqdm  # only downloads need it

    digest = hashlib.sha256()
    received = 0
    expected_length: int | None = None
    request = urllib.request.Request(url, headers={"User-Agent": "imbalance-fetch"})
    try:
        with (
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(dest, "wb") as out,
        ):
            length = response.headers.get("Content-Length")
            expected_length = int(length) if length and length.isdigit() else None
            if expected_length is not None and expected_length > max_bytes:
                raise _download_too_big(url, max_bytes)
            with tqdm(
                total=expected_length,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"download {dest.name}",
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                while chunk := response.read(READ_CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise _download_too_big(url, max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise UserError(
            f"data.source: downloading {url} failed with HTTP {err.code} {err.reason}; "
            "check the URL"
        ) from None
    except urllib.error.URLError as err:
        raise UserError(
            f"data.source: cannot reach {url} ({err.reason}); check the URL and the network"
        ) from None
    except (http.client.HTTPException, OSError) as err:
        raise UserError(
            f"data.source: the download of {url} broke off after {received} bytes "
            f"({type(err).__name__}: {err}); nothing was kept, run the stage again"
        ) from None
    if expected_length is not None and received != expected_length:
        raise UserError(
            f"data.source: the download of {url} was cut short ({received} of "
            f"{expected_length} bytes); nothing was kept, run the stage again"
        )
    return digest.hexdigest()


def _download_too_big(url: str, max_bytes: int) -> UserError:
    return UserError(
        f"data.max_extract_bytes: {url} sends more than {max_bytes} bytes; check data.source, "
        "or raise data.max_extract_bytes if the larger file is right"
    )


def file_sha256(path: Path) -> str:
    """A local file's SHA-256, computed before a single byte of it is parsed."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
