"""Load OSDB files as event streams, with an on-disk parse cache.

Parsing a release is the slow part of every run; the cache keeps the parsed sample streams keyed
by the input files' content (xxh3-128 of every byte, in the order given) and the reader options,
so a second run memory-maps them instead of parsing. A file's digest is memoised by (path, size,
mtime, inode), as git does, so an unchanged file is not even re-read. Entries are written to a
temporary folder and renamed when complete: an interrupted parse leaves no entry behind.

The cache lives in ``$OSDML_CACHE_DIR``, else ``$XDG_CACHE_HOME/osdml``, else
``~/.cache/osdml``; delete it at any time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from osdml.config import ReaderConfig
from osdml.data.osdb import expand_inputs, read_events
from osdml.data.report import DataReport
from osdml.data.streams import (
    STREAMS_FORMAT,
    EventStreams,
    build_streams,
    load_saved,
    save_metadata,
)
from osdml.fileio import atomic_dir, write_json

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """The cache root: ``$OSDML_CACHE_DIR``, ``$XDG_CACHE_HOME/osdml`` or ``~/.cache/osdml``."""
    if os.environ.get("OSDML_CACHE_DIR"):
        return Path(os.environ["OSDML_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "osdml"


def file_digest(path: Path, memo: dict[str, list] | None = None) -> str:
    """xxh3-128 hex digest of the file's bytes, memoised in `memo` by path, size, mtime, inode."""
    import xxhash

    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    key = str(path.resolve())
    if memo is not None and key in memo and memo[key][:3] == stamp:
        return memo[key][3]
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    digest = h.hexdigest()
    if memo is not None:
        memo[key] = [*stamp, digest]
    return digest


def streams_key(paths: Sequence[Path], config: ReaderConfig, memo: dict | None = None) -> str:
    """Cache key of parsing `paths` (in this order) with `config`."""
    import xxhash

    payload = {
        "format": STREAMS_FORMAT,
        "files": [file_digest(p, memo) for p in paths],
        "reader": config.model_dump(mode="json"),
    }
    return xxhash.xxh3_128_hexdigest(json.dumps(payload, sort_keys=True).encode())


def load_streams(
    paths: Sequence[str | os.PathLike],
    config: ReaderConfig | None = None,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int], None] | None = None,
) -> EventStreams:
    """Read OSDB files (or folders of them) into one ``EventStreams``, using the parse cache.

    Parameters
    ----------
    paths : sequence of path-like
        Files (JSON array or NDJSON, optionally gzip) or folders of them.
    config : ReaderConfig, optional
        Reader options; they are part of the cache key.
    cache : bool, default=True
        Use and fill the cache; ``False`` parses into memory every time.
    cache_dir : path-like, optional
        Cache root instead of ``default_cache_dir()``.
    progress : callable, optional
        Called with bytes read while parsing (not called on a cache hit).

    Returns
    -------
    EventStreams
        ``streams.report`` says what was read and skipped; ``streams.from_cache`` whether the
        parse was skipped.

    Raises
    ------
    InputError
        If a path is missing or a file is not OSDB (see ``read_events``).
    """
    cfg = config or ReaderConfig()
    files = expand_inputs(list(paths))
    if not cache:
        report = DataReport()
        return build_streams(_events(files, report, cfg, progress), report, cfg)

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    memo_path = root / "file_digests.json"
    memo = _read_json(memo_path) or {}
    key = streams_key(files, cfg, memo)
    with contextlib.suppress(OSError):
        write_json(memo_path, memo, indent=None)
    folder = root / "streams" / key
    if (folder / "meta.json").exists():
        try:
            streams = load_saved(folder)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable cache entry %s (%s); parsing again", folder, e)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _rename_files(streams, files)
            streams.from_cache = True
            return streams
    report = DataReport()
    with atomic_dir(folder) as tmp:
        built = build_streams(_events(files, report, cfg, progress), report, cfg, folder=tmp)
        save_metadata(built, tmp, {"key": key, "files": [str(p) for p in files],
                                   "reader": cfg.model_dump(mode="json")})
        del built  # drop the memory maps of the temporary folder before it is renamed
    streams = load_saved(folder)
    _rename_files(streams, files)
    return streams


def _events(files: list[Path], report: DataReport, cfg: ReaderConfig, progress) -> Iterator:
    for path in files:
        yield from read_events(path, report, cfg, progress)


def _rename_files(streams: EventStreams, files: list[Path]) -> None:
    """Point a cached entry at the paths given now (same content may sit at another path)."""
    old = streams.report.files
    mapping = {o: str(n) for o, n in zip(old, files, strict=False)}
    streams.report.files = [str(p) for p in files]
    for e in streams.events:
        e.file = mapping.get(e.file, e.file)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
