"""Streaming reader of Open Seizure Database (OSDB) files.

An OSDB file is a JSON array of events, each holding a list of 5 s datapoints (DESIGN.md section
2). Releases are gigabytes, so the reader streams: a JSON array is parsed event by event with
ijson, and NDJSON (one event per line) line by line; a gzip-compressed file of either kind is
read through gzip. Nothing holds more than one event in memory.

Real files vary and are often damaged. Accepted variants: int or string ids, ``o2Sat`` or
``o2sat``, ISO 8601 times with or without ``Z`` and fractions, the legacy
``dd-mm-yyyy HH:MM:SS`` (read as UTC), empty or missing ``rawData3D``, ``hr`` = -1, null
``subType``, bare ``NaN``/``Infinity`` (Python's ``json.dump`` writes them; they are read as
missing samples). Damaged datapoints and events are skipped and counted in a ``DataReport`` with
their reason; a file that is not OSDB at all raises ``InputError`` naming the file and where.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from osdml.config import ReaderConfig
from osdml.data.report import DataReport
from osdml.errors import InputError

_FOREIGN_ACCEL = re.compile(r"^(acc|accel|acceleration)[_ ]?[xyz]?$|^[xyz]$|^a[xyz]$", re.I)
_LFS = b"version https://git-lfs"


@dataclass(slots=True)
class Datapoint:
    """One 5 s OSDB datapoint.

    Attributes
    ----------
    time_s : float
        ``dataTime`` (time of the last sample) as POSIX seconds, UTC.
    accel_mg : np.ndarray of shape (125,), float32
        Acceleration magnitude in milli-g, gravity included (about 1000 at rest).
    accel3d_mg : np.ndarray of shape (125, 3), float32, or None
        x, y, z in milli-g when ``rawData3D`` is present, well-formed and not all zero.
    hr_bpm, o2sat_pct : float
        Heart rate (beats/min) and oxygen saturation (%); NaN when missing (-1 or 0 in files).
    alarm_state : int
        The OpenSeizureDetector algorithm's state: 0 OK, 1 WARNING, 2 ALARM, 5 manual; -1 missing.
    """

    time_s: float
    accel_mg: np.ndarray
    accel3d_mg: np.ndarray | None
    hr_bpm: float
    o2sat_pct: float
    alarm_state: int


@dataclass(slots=True)
class Event:
    """One OSDB event with its readable datapoints, in file order.

    Ids are kept as strings (``407`` and ``"407"`` are the same event). ``type`` and
    ``subtype`` are as written in the file; labels are assigned by selection.
    ``seizure_times`` is ``(start_s, end_s)`` relative to ``time_s`` when recorded.
    """

    id: str
    user_id: str
    type: str
    subtype: str | None
    time_s: float | None
    source: str | None
    desc: str
    seizure_times: tuple[float, float] | None
    file: str
    datapoints: list[Datapoint]


# --------------------------------------------------------------------------- times

def parse_time(value: Any) -> float:
    """Parse an OSDB ``dataTime`` into POSIX seconds (UTC).

    Accepts ISO 8601 (``2022-02-17T06:35:30Z``, with or without ``Z``, offsets and fractions)
    and the legacy ``dd-mm-yyyy HH:MM:SS``. Times without a zone are taken as UTC.

    Raises
    ------
    ValueError
        If `value` is not a string in one of these forms.
    """
    if not isinstance(value, str):
        raise ValueError(f"not a time string: {value!r}")
    s = value.strip()
    if len(s) >= 19 and s[2] == "-" and s[5] == "-" and s[10] in " T":
        # Legacy dd-mm-yyyy HH:MM:SS[.fff] (hand-sliced: strptime is 10x slower).
        dt = datetime(int(s[6:10]), int(s[3:5]), int(s[0:2]),
                      int(s[11:13]), int(s[14:16]), int(s[17:19]), tzinfo=UTC)
        frac = float("0" + s[19:]) if len(s) > 20 and s[19] == "." else 0.0
        return dt.timestamp() + frac
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# --------------------------------------------------------------------------- byte streams

class _NanToNull:
    """File wrapper that turns bare ``NaN`` / ``Infinity`` / ``-Infinity`` values into ``null``.

    ijson (yajl) rejects these non-standard tokens, which Python's ``json.dump`` writes by
    default. Output is cut only just before a comma, so a token is never split between reads.
    Limitation: the same token inside a string, delimited as a value (``"a, NaN, b"``), would
    also be rewritten; descriptions are never used as numbers, so this is harmless.
    """

    _TOKEN = re.compile(rb"(?<=[\[,:])(\s*)(?:NaN|-?Infinity)(?=\s*(?:[,\]}]|\Z))")

    def __init__(self, raw: IO[bytes], progress: Callable[[int], None] | None = None):
        self._raw = raw
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
                continue
            out, self._pending = buf[:cut], buf[cut:]
            return self._fix(out)
        return b""

    def _fix(self, chunk: bytes) -> bytes:
        if b"NaN" in chunk or b"Infinity" in chunk:
            return self._TOKEN.sub(rb"\1null", chunk)
        return chunk


def _open_stream(path: Path) -> tuple[IO[bytes], str]:
    """Open `path` and tell what it holds: ``"array"`` or ``"ndjson"``; raise for anything else."""
    if not path.exists():
        raise InputError(f"cannot read events: {path} does not exist")
    if path.is_dir():
        raise InputError(f"cannot read events: {path} is a folder; pass the .json files in it")
    f: IO[bytes] = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        head = f.read(512)
        if head[:2] == b"\x1f\x8b":
            f.close()
            f = gzip.open(path, "rb")
            try:
                head = f.read(512)
            except (OSError, EOFError) as e:
                raise InputError(f"cannot read events: {path}: corrupt gzip data ({e})") from None
        f.seek(0)
        return f, _sniff(path, head, os.path.getsize(path))
    except BaseException:
        f.close()
        raise


def _sniff(path: Path, head: bytes, size: int) -> str:
    if not head.strip():
        what = "empty (0 bytes)" if size == 0 else "blank (only whitespace)"
        raise InputError(f"cannot read events: {path} is {what}")
    if head.startswith(_LFS):
        raise InputError(
            f"cannot read events: {path} is a Git LFS pointer ({size} bytes), not JSON; "
            "run `git lfs pull`"
        )
    body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    low = body[:200].lower()
    if body.startswith(b"<"):
        kind = "an HTML page" if b"html" in low else "XML or HTML"
        raise InputError(
            f"cannot read events: {path} is {kind}, not OSDB JSON (a download that saved an "
            "error or login page?)"
        )
    if body.startswith(b"["):
        return "array"
    if body.startswith(b"{"):
        return "ndjson"
    printable = body[:20].decode("utf-8", "replace").split("\n")[0]
    raise InputError(
        f"cannot read events: {path} is not JSON (starts with {printable!r}); expected a JSON "
        "array of OSDB events or one event per line"
    )


# --------------------------------------------------------------------------- events

def read_events(
    path: str | os.PathLike,
    report: DataReport,
    config: ReaderConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Event]:
    """Stream the events of one OSDB file.

    Parameters
    ----------
    path : path-like
        A JSON array of events, or NDJSON (one event per line); either may be gzip-compressed.
    report : DataReport
        Counts of what was read and skipped are added to it.
    config : ReaderConfig, optional
        Samples per datapoint and the magnitude plausibility limit.
    progress : callable, optional
        Called with the number of (compressed) bytes consumed, as they are read.

    Yields
    ------
    Event
        Events with at least one readable datapoint, datapoints in file order.

    Raises
    ------
    InputError
        If the file is missing, empty, an LFS pointer or HTML page, not JSON, truncated or
        invalid JSON, a top-level object, or holds items that are not OSDB events (for example
        datapoints with ``accX`` fields and no ``rawData``). The message names the file and the
        event (and datapoint, or byte offset) where reading failed.
    """
    path = Path(path)
    cfg = config or ReaderConfig()
    report.files.append(str(path))
    f, kind = _open_stream(path)
    with f:
        items = _array_items(path, f, progress) if kind == "array" else _ndjson_items(
            path, f, progress)
        for index, obj in items:
            event = _event(obj, index, path, cfg, report)
            if event is not None:
                yield event


def _array_items(path: Path, f: IO[bytes], progress) -> Iterator[tuple[int, Any]]:
    import ijson

    stream = _NanToNull(f, progress)
    index = -1
    try:
        for index, obj in enumerate(ijson.items(stream, "item", use_float=True)):  # noqa: B007
            yield index, obj
    except ijson.JSONError as e:
        lines = [ln.strip() for ln in str(e).strip().splitlines()] or [type(e).__name__]
        msg = lines[0].rstrip(".")
        if len(lines) > 1 and "right here" not in lines[1]:
            msg += f" at {lines[1][:60]!r}"  # yajl quotes the text around the error
        done = f"after {index + 1} complete event{'s' if index else ''}" if index >= 0 \
            else "in the first event"
        if "premature EOF" in msg or "Incomplete" in msg:
            problem = f"file ends {done} (truncated download or copy?)"
        else:
            problem = f"invalid JSON {done} (before byte {stream.bytes_read}): {msg}"
        raise InputError(f"cannot read events: {path}: {problem}") from None


def _ndjson_items(path: Path, f: IO[bytes], progress) -> Iterator[tuple[int, Any]]:
    index = 0
    for lineno, line in enumerate(f, start=1):
        if progress is not None:
            progress(len(line))
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if lineno == 1:
                raise InputError(
                    f"cannot read events: {path}: top-level JSON object that is not one event "
                    "per line; expected a JSON array of OSDB events or NDJSON"
                ) from None
            raise InputError(
                f"cannot read events: {path}: line {lineno} is not valid JSON ({e.msg}); "
                "truncated file?"
            ) from None
        if lineno == 1 and isinstance(obj, dict) and "datapoints" not in obj:
            keys = ", ".join(list(obj)[:5])
            raise InputError(
                f"cannot read events: {path}: top-level JSON object (keys: {keys}), not an "
                "array of OSDB events"
            )
        yield index, obj
        index += 1


def _event(obj: Any, index: int, path: Path, cfg: ReaderConfig, report: DataReport):
    where = f"{path.name}: event #{index}"
    if not isinstance(obj, dict):
        raise InputError(
            f"cannot read events: {path}: item #{index} is {_a(obj)}, not an OSDB event object"
        )
    report.events_read += 1
    dps = obj.get("datapoints")
    if "id" not in obj or obj["id"] is None:
        if dps is None and "type" not in obj:
            keys = ", ".join(list(obj)[:6]) or "none"
            raise InputError(
                f"cannot read events: {path}: item #{index} (keys: {keys}) is not an OSDB "
                "event: no id, type or datapoints"
            )
        report.skip_event("missing_id", where)
        return None
    event_id = str(obj["id"])
    where = f"event {event_id}"
    if not isinstance(dps, list):
        report.skip_event("no_datapoints", f"{path.name}: {where}")
        return None
    spd = cfg.samples_per_datapoint
    datapoints = []
    for j, dp in enumerate(dps):
        report.datapoints_read += 1
        point = _datapoint(dp, spd, cfg.min_mean_mg, report, path, f"{where} datapoint #{j}")
        # report examples name the file; error messages name it separately
        if point is not None:
            datapoints.append(point)
    if not datapoints:
        report.skip_event("no_valid_datapoints", f"{path.name}: {where}")
        return None
    user = obj.get("userId")
    if user is None and isinstance(dps[0], dict):
        user = dps[0].get("userId")
    seizure_times = obj.get("seizureTimes")
    if not (isinstance(seizure_times, list) and len(seizure_times) == 2
            and all(isinstance(t, int | float) for t in seizure_times)):
        seizure_times = None
    else:
        seizure_times = (float(seizure_times[0]), float(seizure_times[1]))
    try:
        time_s = parse_time(obj.get("dataTime"))
    except ValueError:
        time_s = None
    subtype = obj.get("subType")
    return Event(
        id=event_id,
        user_id="" if user is None else str(user),
        type=str(obj.get("type") or ""),
        subtype=None if subtype is None else str(subtype),
        time_s=time_s,
        source=None if obj.get("dataSourceName") is None else str(obj["dataSourceName"]),
        desc=str(obj.get("desc") or ""),
        seizure_times=seizure_times,
        file=str(path),
        datapoints=datapoints,
    )


def _datapoint(dp: Any, spd: int, min_mean_mg: float, report: DataReport, path: Path, where: str):
    if not isinstance(dp, dict):
        raise InputError(
            f"cannot read events: {path}: {where} is {_a(dp)}, not an OSDB datapoint object"
        )
    loc = f"{path.name}: {where}"
    raw = dp.get("rawData")
    if raw is None:
        foreign = sorted(k for k in dp if _FOREIGN_ACCEL.match(k))
        if foreign and "rawData" not in dp:
            raise InputError(
                f"cannot read events: {path}: {where} has {', '.join(foreign)} "
                "and no rawData: not OSDB format (OSDB datapoints carry rawData, "
                f"{spd} magnitude samples in mg)"
            )
        report.skip_datapoint("no_rawData", loc)
        return None
    if not isinstance(raw, list):
        report.skip_datapoint("non_numeric", loc)
        return None
    if len(raw) != spd:
        report.skip_datapoint("wrong_length", loc)
        return None
    try:
        accel = np.array(raw, dtype=np.float32)
    except (TypeError, ValueError):
        report.skip_datapoint("non_numeric", loc)
        return None
    total = float(accel.sum(dtype=np.float64))  # one pass: NaN/inf make the sum non-finite
    if not math.isfinite(total):
        report.skip_datapoint("nan_or_null", loc)
        return None
    if total / spd < min_mean_mg:
        report.skip_datapoint("implausible_magnitude", loc)
        return None
    try:
        time_s = parse_time(dp.get("dataTime"))
    except (ValueError, TypeError):
        report.skip_datapoint("bad_time", loc)
        return None
    return Datapoint(
        time_s=time_s,
        accel_mg=accel,
        accel3d_mg=_accel3d(dp.get("rawData3D"), spd, report, loc),
        hr_bpm=_positive(dp.get("hr")),
        o2sat_pct=_positive(dp.get("o2Sat", dp.get("o2sat"))),
        alarm_state=dp["alarmState"] if isinstance(dp.get("alarmState"), int) else -1,
    )


def _accel3d(raw3: Any, spd: int, report: DataReport, where: str) -> np.ndarray | None:
    if not raw3:  # missing, null or empty: many watches send no 3-D data
        return None
    if not isinstance(raw3, list) or len(raw3) != 3 * spd:
        report.note("rawData3D_dropped", where)
        return None
    try:
        xyz = np.array(raw3, dtype=np.float32).reshape(spd, 3)
    except (TypeError, ValueError):
        report.note("rawData3D_dropped", where)
        return None
    size = float(np.abs(xyz).sum(dtype=np.float64))  # one pass: non-finite, or zero
    if not math.isfinite(size):
        report.note("rawData3D_dropped", where)
        return None
    if size == 0.0:
        report.note("rawData3D_zero", where)
        return None
    return xyz


def _a(value: Any) -> str:
    """'a list', 'an int': the JSON value's Python type with its article."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _positive(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and math.isfinite(v):
        return float(v)
    return math.nan


def expand_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand folders into the OSDB files they hold (``*.json``, ``*.ndjson``, ``*.jsonl`` and
    their ``.gz``), sorted, skipping hidden files; keep files as given.

    Raises
    ------
    InputError
        If a path does not exist, or a folder holds no OSDB files.
    """
    out: list[Path] = []
    suffixes = (".json", ".ndjson", ".jsonl", ".json.gz", ".ndjson.gz", ".jsonl.gz")
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                c for c in p.iterdir()
                if c.is_file() and not c.name.startswith(".") and c.name.endswith(suffixes)
            )
            if not found:
                raise InputError(f"cannot read events: folder {p} holds no .json or .ndjson files")
            out.extend(found)
        elif not p.exists():
            raise InputError(f"cannot read events: {p} does not exist")
        else:
            out.append(p)
    return out
