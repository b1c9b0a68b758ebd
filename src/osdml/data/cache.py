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

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from osdml.config import ReaderConfig
from osdml.data.osdb import expand_inputs, read_events
from osdml.data.report import DataReport
from osdml.data.streams import (
    STREAMS_FORMAT,
    EventStreams,
    StaleCacheEntry,
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
    # ctime changes on every write and cannot be set back, unlike mtime
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
    key = str(path.resolve())
    entry = memo.get(key) if memo is not None else None
    if isinstance(entry, list) and len(entry) == 5 and entry[:4] == stamp:
        return entry[4]
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
    if cache and not all(p.is_file() for p in files):
        log.info("not caching: an input is a pipe or device, which can be read only once")
        cache = False
    if cache:
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        try:
            return _cached(files, cfg, root, progress)
        except _CacheUnusable as e:
            warnings.warn(f"parse cache {root} unusable ({e}); reading without it",
                          stacklevel=2)
    report = DataReport()
    return build_streams(_events(files, report, cfg, progress), report, cfg)


class _CacheUnusable(Exception):
    pass


def _cached(files: list[Path], cfg: ReaderConfig, root: Path, progress) -> EventStreams:
    memo_path = root / "file_digests.json"
    memo = _read_json(memo_path)
    memo = memo if isinstance(memo, dict) else {}
    key = streams_key(files, cfg, memo)
    folder = root / "streams" / key
    try:
        write_json(memo_path, memo, indent=None)
    except OSError as e:
        raise _CacheUnusable(e.strerror or e) from None
    if (folder / "meta.json").exists():
        try:
            streams = load_saved(folder)
        except StaleCacheEntry as e:
            log.info("cache entry %s: %s; parsing again", folder, e)
            shutil.rmtree(folder, ignore_errors=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable cache entry %s (%s); parsing again", folder, e)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _rename_files(streams, files)
            streams.from_cache = True
            return streams
    try:  # fail early, and fall back to no cache, if the cache folder is not writable
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=folder.parent))
    except OSError as e:
        raise _CacheUnusable(e.strerror or e) from None
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
