"""Byte streams of OSDB files: open, recognise, and clean them before the JSON parser.

``open_events_stream(path)`` opens a file (regular, pipe or device; plain or gzip), skips a UTF-8
byte-order mark, and tells from its first bytes whether it is a JSON array, NDJSON, or one JSON
object over several lines (a single pretty-printed event), or else why it is not OSDB (empty,
Git LFS pointer, HTML page, UTF-16 text, binary data, a single JSON value). It never seeks,
so ``/dev/stdin`` and ``<(zcat ...)`` work.

``NanToNull`` wraps the stream for ijson: it rewrites bare ``NaN`` / ``Infinity`` tokens (which
Python's ``json.dump`` writes and yajl rejects) as ``null``, and refuses nesting far deeper than
any OSDB file has, which would otherwise make the parser's memory grow without bound.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from osdml.errors import InputError

_LFS = b"version https://git-lfs"
_BOMS = {b"\xef\xbb\xbf": "utf-8"}
_WIDE = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
MAX_OPENERS = 32  # consecutive '[': OSDB files have at most 1


class _Prefixed(io.RawIOBase):
    """A read-only stream that first returns `head`, then the rest of `raw` (no seeking)."""

    def __init__(self, head: bytes, raw: IO[bytes], also_close: IO[bytes] | None = None):
        super().__init__()
        self._head, self._raw, self._also_close = head, raw, also_close

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        """Direct read: no copy through ``readinto`` (ijson reads 64 KB at a time)."""
        if not self._head:
            return self._raw.read(n)
        if n is None or n < 0:
            out, self._head = self._head + self._raw.read(), b""
        else:
            out, self._head = self._head[:n], self._head[n:]
        return out

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(view))
        view[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
            if self._also_close is not None:
                self._also_close.close()
        super().close()


def open_events_stream(path: Path) -> tuple[_Prefixed, str, bool]:
    """Open `path` for reading events; return ``(stream, kind, gzipped)``.

    ``kind`` is ``"array"`` (a JSON array), ``"ndjson"`` (one object per line; a single event
    written on one line is read as such) or ``"object"`` (one JSON object over several lines,
    such as one pretty-printed event). The stream starts after any UTF-8 byte-order mark.

    Raises
    ------
    InputError
        If the path is missing or a folder, or the content is not OSDB JSON; one line naming
        the file and what it is instead.
    """
    if not path.exists():
        raise InputError(f"cannot read events: {path} does not exist")
    if path.is_dir():
        raise InputError(f"cannot read events: {path} is a folder; pass the .json files in it")
    try:
        raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as e:
        raise InputError(f"cannot read events: {path}: {e.strerror}") from None
    try:
        head = raw.read(4096)
        gzipped = head[:2] == b"\x1f\x8b"
        source: IO[bytes] = raw
        if gzipped:
            # GzipFile reads through a prefixed raw stream: no seek, so pipes work too
            source = gzip.GzipFile(fileobj=_Prefixed(head, raw), mode="rb")  # type: ignore
            try:
                head = source.read(4096)
            except (OSError, EOFError, zlib.error) as e:
                raise InputError(f"cannot read events: {path}: corrupt gzip data ({e})") from None
        for bom in _BOMS:
            if head.startswith(bom):
                head = head[len(bom):]
        stream = _Prefixed(head, source, also_close=raw if gzipped else None)
        kind = _sniff(path, head, path.stat().st_size if path.is_file() else None)
        return stream, kind, gzipped
    except BaseException:
        raw.close()
        raise


_MODEL_MAGIC = {b"ET12": "an ExecuTorch program (.pte)",
                b"BP08": "an ExecuTorch bundled program (.bpte)",
                b"TFL3": "a TensorFlow Lite model (.tflite)"}


def _sniff(path: Path, head: bytes, size: int | None) -> str:
    if not head.strip():
        what = "empty (0 bytes)" if not head else "blank (only whitespace)"
        raise InputError(f"cannot read events: {path} is {what}")
    if head.startswith(_LFS):
        raise InputError(f"cannot read events: {path} is a Git LFS pointer ({size} bytes), not "
                         "JSON; run `git lfs pull`")
    stripped = head.lstrip(b"\x00")
    if head.startswith(_WIDE) or (head[:64].count(b"\x00") > 8 and stripped
                                  and stripped[:1] in b"[{ \r\n"):
        raise InputError(f"cannot read events: {path} is UTF-16 or UTF-32 text; OSDB files are "
                         "UTF-8 (convert it, e.g. with iconv -t UTF-8)")
    model = _MODEL_MAGIC.get(head[4:8]) or ("a zip archive (a PyTorch model file?)"
                                            if head.startswith(b"PK\x03\x04") else None)
    if model:
        raise InputError(f"cannot read events: {path} is {model}, not OSDB JSON (a model file "
                         "given where data was expected?)")
    body = head.lstrip(b" \t\r\n")
    if body.startswith(b"["):
        return "array"
    if body.startswith(b"{"):
        # NDJSON has a whole object on each line; a first line that is not one (``{`` alone,
        # ``{"key": 1,``) opens a pretty-printed single object, as upstream's
        # documentation/Examples/*/rawData.json (one event)
        first, newline, _ = body.partition(b"\n")
        if newline and not _is_json(first):
            return "object"
        return "ndjson"
    if body.startswith(b"<"):
        kind = "an HTML page" if b"html" in body[:200].lower() else "XML or HTML"
        raise InputError(f"cannot read events: {path} is {kind}, not OSDB JSON (a download "
                         "that saved an error or login page?)")
    if b"\x00" in head or sum(b < 9 or 13 < b < 32 for b in head[:256]) > 8:
        raise InputError(f"cannot read events: {path} is binary data, not JSON")
    if body[:1] in b'"-0123456789' or body.split(b"\n")[0].strip() in (b"null", b"true",
                                                                        b"false"):
        raise InputError(f"cannot read events: {path} holds a single JSON value, not an array "
                         "of OSDB events")
    printable = body[:20].decode("utf-8", "replace").split("\n")[0]
    raise InputError(f"cannot read events: {path} is not JSON (starts with {printable!r}); "
                     "expected a JSON array of OSDB events or one event per line")


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


class NanToNull:
    """Stream wrapper for ijson: bare ``NaN`` / ``Infinity`` / ``-Infinity`` become ``null``.

    Output is cut only just before a comma, so a token is never split between reads.
    Limitation: the same token inside a string, delimited as a value (``"a, NaN, b"``), is also
    rewritten; descriptions are never read as numbers, so this is harmless.

    Raises
    ------
    InputError
        From ``read``, when more than ``MAX_OPENERS`` arrays open in a row.
    """

    _TOKEN = re.compile(rb"(?<=[\[,:])(\s*)(?:NaN|-?Infinity)(?=\s*(?:[,\]}]|\Z))")
    # an object opener must be followed by a key, so a run of openers is '[' repeated
    _DEEP = re.compile(rb"(?:\[\s*){%d}" % MAX_OPENERS)

    def __init__(self, raw, path: Path, progress: Callable[[int], None] | None = None):
        self._raw = raw
        self._path = path
        self._pending = b""
        self._eof = False
        self.bytes_read = 0
        self._progress = progress

    def read(self, n: int = 65536) -> bytes:
        if n == 0:  # ijson probes read(0) to learn whether the stream gives bytes or str
            return b""
        while not self._eof:
            data = self._raw.read(max(n, 4096))
            self.bytes_read += len(data)
            if self._progress is not None:
                self._progress(len(data))
            if not data:
                self._eof = True
                out, self._pending = self._pending, b""
                return self._fix(out)
            buf = self._pending + data
            cut = buf.rfind(b",")
            if cut <= 0:
                self._pending = buf
                self._check_depth(buf)
                continue
            out, self._pending = buf[:cut], buf[cut:]
            return self._fix(out)
        return b""

    @property
    def at_end(self) -> bool:
        """True once the underlying stream is exhausted (a parse error then means truncation)."""
        return self._eof

    def _check_depth(self, chunk: bytes) -> None:
        # bytes.count runs at memory speed; the regex only when brackets are unusually dense
        # (OSDB JSON has about 2 per 3 KB datapoint)
        if chunk.count(b"[") * 64 > len(chunk) + MAX_OPENERS * 64 and self._DEEP.search(chunk):
            raise InputError(f"cannot read events: {self._path}: JSON nested more than "
                             f"{MAX_OPENERS} levels deep; OSDB files nest 4 levels")

    def _fix(self, chunk: bytes) -> bytes:
        self._check_depth(chunk)
        if b"NaN" in chunk or b"Infinity" in chunk:
            return self._TOKEN.sub(rb"\1null", chunk)
        return chunk


_EOL = re.compile(rb"\r\n|\r|\n")


def iter_lines(stream, chunk_size: int = 1 << 16):
    """Yield the lines of a binary stream (without line ends), splitting on ``\\n``,
    ``\\r\\n`` and a lone ``\\r``; reads in chunks, so a file of any size streams."""
    pending = b""
    while chunk := stream.read(chunk_size):
        buf = pending + chunk
        parts = _EOL.split(buf)
        # the last piece may be an unfinished line, or a \r whose \n is in the next chunk
        pending = parts.pop()
        if buf.endswith(b"\r"):
            pending = parts.pop() + b"\r" if parts else pending
        yield from parts
    if pending.rstrip(b"\r"):
        yield pending.rstrip(b"\r")
