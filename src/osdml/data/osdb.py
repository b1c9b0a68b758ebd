"""Streaming reader of Open Seizure Database (OSDB) files.

An OSDB file is a JSON array of events, each holding a list of 5 s datapoints (docs/data.md);
a file holding one event object (upstream's ``documentation/Examples/*/rawData.json``) is read
as one event.
Releases are gigabytes, so the reader streams: a JSON array is parsed event by event with
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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from osdml.config import ReaderConfig
from osdml.data.jsonstream import NanToNull, iter_lines, open_events_stream
from osdml.data.report import DataReport
from osdml.errors import InputError
from osdml.ids import normalize_id

_FOREIGN_ACCEL = re.compile(r"^(acc|accel|acceleration)[_ ]?[xyz]?$|^[xyz]$|^a[xyz]$", re.I)
_LFS = b"version https://git-lfs"


@dataclass(slots=True)
class Datapoint:
    """One 5 s OSDB datapoint.

    Attributes
    ----------
    time_s : float
        ``dataTime`` (time of the last sample) as POSIX seconds, UTC.
    accel_mg : np.ndarray of shape (125,), float64
        Acceleration magnitude in milli-g, gravity included (about 1000 at rest), as written
        (the app holds ``rawData`` as doubles).
    accel3d_mg : np.ndarray of shape (125, 3), float32, or None
        x, y, z in milli-g when ``rawData3D`` is present, well-formed and not all zero.
    hr_bpm, o2sat_pct : float
        Heart rate (beats/min) and oxygen saturation (%); NaN when missing (-1 or 0 in files).
    alarm_state : int
        The OpenSeizureDetector algorithm's state: 0 OK, 1 WARNING, 2 ALARM, 5 manual; -1 missing.
    spec_power, roi_power : int
        The OSD algorithm's recorded ``specPower`` and ``roiPower``; -1 when missing.
    osd_settings : tuple of 4 int or None
        ``alarmFreqMin``, ``alarmFreqMax``, ``alarmThresh``, ``alarmRatioThresh`` recorded on the
        datapoint (None when any is missing).
    """

    time_s: float
    accel_mg: np.ndarray
    accel3d_mg: np.ndarray | None
    hr_bpm: float
    o2sat_pct: float
    alarm_state: int
    spec_power: int = -1
    roi_power: int = -1
    osd_settings: tuple[int, int, int, int] | None = None


@dataclass(slots=True)
class Event:
    """One OSDB event with its readable datapoints, in file order.

    Ids are kept as strings (``407`` and ``"407"`` are the same event). ``type`` and
    ``subtype`` are as written in the file; labels are assigned by selection.
    ``seizure_times`` is ``(start_s, end_s)`` relative to ``time_s`` when recorded.
    ``osd_settings`` are the OSD algorithm's settings recorded on the event (as on
    ``Datapoint``), or None.
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
    osd_settings: tuple[int, int, int, int] | None = None


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
        tail = s[19:]
        if tail not in ("", "Z") and not (tail[0] == "." and tail[1:].isdigit()):
            raise ValueError(f"unreadable time {value!r}")
        frac = float("0" + tail) if tail.startswith(".") else 0.0
        return dt.timestamp() + frac
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


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
        A JSON array of events, NDJSON (one event per line) or a single event object (as
        upstream's ``documentation/Examples/*/rawData.json``, pretty-printed or on one line);
        any may be gzip-compressed, and may be a pipe (``/dev/stdin``).
    report : DataReport
        Counts of what was read and skipped are added to it.
    config : ReaderConfig, optional
        Samples per datapoint and the magnitude plausibility limit.
    progress : callable, optional
        Called with the number of (decompressed) bytes consumed, as they are read.

    Yields
    ------
    Event
        Events with at least one readable datapoint, datapoints in file order.

    Raises
    ------
    InputError
        If the file is missing, empty, an LFS pointer, an HTML page, UTF-16 text, binary, not
        JSON, truncated or invalid JSON or gzip, a top-level object that is not an event
        (no ``datapoints``), nested absurdly deep, or
        holds items that are not OSDB events (for example datapoints with ``accX`` fields and
        no ``rawData``). The message names the file and the event (and datapoint) where
        reading failed.
    """
    path = Path(path)
    cfg = config or ReaderConfig()
    report.files.append(str(path))
    stream, kind, gzipped = open_events_stream(path)
    with stream:
        items = (_array_items(path, stream, progress) if kind == "array"
                 else _object_items(path, stream, progress) if kind == "object"
                 else _ndjson_items(path, stream, progress))
        try:
            for index, obj in items:
                event = _event(obj, index, path, cfg, report)
                if event is not None:
                    yield event
        except (EOFError, zlib.error, gzip.BadGzipFile) as e:
            what = "truncated or corrupt gzip data" if gzipped else "unexpected end of data"
            raise InputError(f"cannot read events: {path}: {what} ({e})") from None
        except (RecursionError, MemoryError):
            raise InputError(f"cannot read events: {path}: JSON nested too deep to be an OSDB "
                             "file") from None


def _array_items(path: Path, f, progress) -> Iterator[tuple[int, Any]]:
    import ijson

    stream = NanToNull(f, path, progress)
    index = -1
    try:
        for index, obj in enumerate(ijson.items(stream, "item", use_float=True)):  # noqa: B007
            yield index, obj
    except ijson.JSONError as e:
        raise _json_error(path, e, index, stream.at_end) from None


def _json_error(path: Path, e: Exception, index: int, at_end: bool) -> InputError:
    """One line for an ijson parse error after `index` + 1 complete events."""
    text = e.args[0] if e.args else ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [ln.strip() for ln in str(text).strip().splitlines()] or [type(e).__name__]
    msg = lines[0].rstrip(".")
    if len(lines) > 1 and "right here" not in lines[1]:
        msg += f" at {lines[1][:60]!r}"  # yajl quotes the text around the error
    done = (f"after {index + 1} complete event{'' if index == 0 else 's'}" if index >= 0
            else "in the first event")
    if "premature EOF" in msg or "Incomplete" in msg or at_end:
        problem = f"file ends {done} (truncated download or copy?)"
    else:
        problem = f"invalid JSON {done}: {msg}"
    return InputError(f"cannot read events: {path}: {problem}")


def _object_items(path: Path, f, progress) -> Iterator[tuple[int, Any]]:
    """The one event of a file that holds a single JSON object over several lines (upstream's
    documentation/Examples/*/rawData.json); an object that is not an event is refused."""
    import ijson

    stream = NanToNull(f, path, progress)
    try:
        (obj,) = ijson.items(stream, "", use_float=True)
    except ijson.JSONError as e:
        if "trailing garbage" in str(e.args[0] if e.args else ""):
            raise InputError(f"cannot read events: {path}: more JSON after the first object "
                             "(several events? write them as a JSON array or one per line)"
                             ) from None
        raise _json_error(path, e, -1, stream.at_end) from None
    if not isinstance(obj, dict) or "datapoints" not in obj:
        keys = ", ".join(list(obj)[:5]) if isinstance(obj, dict) else ""
        raise InputError(f"cannot read events: {path}: top-level JSON object (keys: "
                         f"{keys or 'none'}), neither an OSDB event (no datapoints) nor an "
                         "array of OSDB events")
    yield 0, obj


def _ndjson_items(path: Path, f, progress) -> Iterator[tuple[int, Any]]:
    index = 0
    for lineno, raw in enumerate(iter_lines(f), start=1):
        if progress is not None:
            progress(len(raw) + 1)
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"cannot read events: {path}: line {lineno} is not UTF-8 text"
                             ) from None
        except json.JSONDecodeError as e:
            if lineno == 1:
                raise InputError(f"cannot read events: {path}: top-level JSON object that is not "
                                 "one event per line; expected a JSON array of OSDB events or "
                                 "NDJSON") from None
            raise InputError(f"cannot read events: {path}: line {lineno} is not valid JSON "
                             f"({e.msg}); truncated file?") from None
        if lineno == 1 and isinstance(obj, dict) and "datapoints" not in obj:
            keys = ", ".join(list(obj)[:5])
            raise InputError(f"cannot read events: {path}: top-level JSON object (keys: "
                             f"{keys or 'none'}), neither an OSDB event (no datapoints) nor an "
                             "array of OSDB events")
        yield index, obj
        index += 1


def _event(obj: Any, index: int, path: Path, cfg: ReaderConfig, report: DataReport):
    where = f"{path.name}: event #{index}"
    if not isinstance(obj, dict):
        raise InputError(f"cannot read events: {path}: item #{index} is {_a(obj)}, not an OSDB "
                         "event object")
    report.events_read += 1
    dps = obj.get("datapoints")
    if obj.get("id") is None:
        if dps is None and "type" not in obj:
            keys = ", ".join(list(obj)[:6]) or "none"
            raise InputError(f"cannot read events: {path}: item #{index} (keys: {keys}) is not "
                             "an OSDB event: no id, type or datapoints")
        report.skip_event("missing_id", where)
        return None
    event_id = normalize_id(obj["id"])
    if event_id is None:
        report.skip_event("bad_id", where)
        return None
    where = f"event {event_id}"
    if not isinstance(dps, list):
        report.skip_event("no_datapoints", f"{path.name}: {where}")
        return None
    spd = cfg.samples_per_datapoint
    datapoints = []
    for j, dp in enumerate(dps):
        report.datapoints_read += 1
        point = _datapoint(dp, spd, cfg.min_mean_mg, report, path, f"{where} datapoint #{j}",
                           cfg.max_abs_mg)
        if point is not None:
            datapoints.append(point)
    if not datapoints:
        report.skip_event("no_valid_datapoints", f"{path.name}: {where}")
        return None
    loc = f"{path.name}: {where}"
    user = obj.get("userId")
    if user is None and isinstance(dps[0], dict):
        user = dps[0].get("userId")
    user_id = "" if user is None else normalize_id(user)
    if user_id is None:
        report.note("bad_user_id", loc)
        user_id = ""
    time_s = None
    if obj.get("dataTime") is not None:
        try:
            time_s = parse_time(obj["dataTime"])
        except (ValueError, TypeError, OverflowError):
            report.note("bad_event_time", loc)
    subtype, etype = obj.get("subType"), obj.get("type")
    return Event(
        id=event_id,
        user_id=user_id,
        type=etype if isinstance(etype, str) else "" if etype is None else json.dumps(etype),
        subtype=None if subtype is None else str(subtype),
        time_s=time_s,
        source=None if obj.get("dataSourceName") is None else str(obj["dataSourceName"]),
        desc=str(obj.get("desc") or ""),
        seizure_times=_seizure_times(obj.get("seizureTimes"), report, loc),
        file=str(path),
        datapoints=datapoints,
        osd_settings=osd_settings(obj),
    )


OSD_SETTING_KEYS = ("alarmFreqMin", "alarmFreqMax", "alarmThresh", "alarmRatioThresh")


def osd_settings(obj: dict) -> tuple[int, int, int, int] | None:
    """The OSD algorithm's settings recorded in an event or datapoint object, as the app parses
    them (whole numbers), or None when one is missing or not a number."""
    values = []
    for key in OSD_SETTING_KEYS:
        v = obj.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        values.append(int(v))
    return tuple(values)  # type: ignore[return-value]


def _recorded_power(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return -1
    return int(v)


def _seizure_times(value: Any, report: DataReport, loc: str) -> tuple[float, float] | None:
    """[start, end] seconds relative to the event time, or None (noted when malformed)."""
    if value is None:
        return None
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
                  for t in value) and value[0] <= value[1])
    if not ok:
        report.note("bad_seizure_times", loc)
        return None
    return float(value[0]), float(value[1])


def _samples(raw: Any, n_values: int, check_finite: bool = True, dtype=np.float32
             ) -> np.ndarray | str:
    """`raw` as samples of `dtype`, or the skip reason: wrong_length, non_numeric, nan_or_null.

    Values are converted as numpy converts them (a numeric string such as "1000" reads as
    1000); nested lists (``[x, y, z]`` triplets) and non-numeric text are ``non_numeric``;
    null, NaN and infinity are ``nan_or_null``.
    """
    if not isinstance(raw, list):
        return "non_numeric"
    if len(raw) != n_values:
        return "wrong_length"
    try:
        out = np.array(raw, dtype=dtype)  # null -> NaN
    except (TypeError, ValueError, OverflowError):
        return "non_numeric"
    if out.ndim != 1:
        return "non_numeric"
    if check_finite and not math.isfinite(float(out.sum(dtype=np.float64))):  # NaN/inf: sum
        return "nan_or_null"
    return out


def _datapoint(dp: Any, spd: int, min_mean_mg: float, report: DataReport, path: Path, where: str,
               max_abs_mg: float = 1e6):
    loc = f"{path.name}: {where}"
    if not isinstance(dp, dict):
        raise InputError(f"cannot read events: {path}: {where} is {_a(dp)}, not an OSDB "
                         "datapoint object")
    raw = dp.get("rawData")
    if raw is None:
        foreign = sorted(k for k in dp if _FOREIGN_ACCEL.match(k))
        if foreign and "rawData" not in dp:
            raise InputError(f"cannot read events: {path}: {where} has {', '.join(foreign)} and "
                             f"no rawData: not OSDB format (OSDB datapoints carry rawData, {spd} "
                             "magnitude samples in mg)")
        report.skip_datapoint("no_rawData", loc)
        return None
    accel = _samples(raw, spd, dtype=np.float64)
    if not isinstance(accel, str) and not float(np.abs(accel).max()) <= max_abs_mg:
        accel = "implausible_value"
    if isinstance(accel, str):
        report.skip_datapoint(accel, loc)
        return None
    if float(accel.sum(dtype=np.float64)) < min_mean_mg * spd:  # mean below the minimum
        report.skip_datapoint("implausible_magnitude", loc)
        return None
    try:
        time_s = parse_time(dp.get("dataTime"))
    except (ValueError, TypeError, OverflowError):
        report.skip_datapoint("bad_time", loc)
        return None
    alarm = dp.get("alarmState")
    return Datapoint(
        time_s=time_s,
        accel_mg=accel,
        accel3d_mg=_accel3d(dp.get("rawData3D"), spd, report, loc),
        hr_bpm=_positive(dp.get("hr")),
        o2sat_pct=_positive(dp.get("o2Sat", dp.get("o2sat"))),
        alarm_state=alarm if isinstance(alarm, int) and not isinstance(alarm, bool)
        and 0 <= alarm <= 9 else -1,
        spec_power=_recorded_power(dp.get("specPower")),
        roi_power=_recorded_power(dp.get("roiPower")),
        osd_settings=osd_settings(dp),
    )


def _accel3d(raw3: Any, spd: int, report: DataReport, loc: str) -> np.ndarray | None:
    if not raw3:  # missing, null or empty: many watches send no 3-D data
        return None
    xyz = _samples(raw3, 3 * spd, check_finite=False)
    largest = float(np.abs(xyz).max()) if not isinstance(xyz, str) else math.nan
    if not largest <= 32767:  # NaN, infinity, beyond +-32 g (not mg), or not numbers
        report.note("rawData3D_dropped", loc)
        return None
    if largest == 0:
        report.note("rawData3D_zero", loc)
        return None
    return xyz.reshape(spd, 3)


_JSON_TYPES = {"NoneType": "null", "str": "a string", "int": "a number", "float": "a number",
               "bool": "a boolean", "list": "an array", "dict": "an object"}


def _a(value: Any) -> str:
    """The JSON type of a parsed value, with its article: 'an array', 'null'."""
    return _JSON_TYPES.get(type(value).__name__, f"a {type(value).__name__}")


def _positive(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and math.isfinite(v):
        return float(v)
    return math.nan


_SUFFIXES = (".json", ".ndjson", ".jsonl", ".json.gz", ".ndjson.gz", ".jsonl.gz")


def expand_inputs(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand folders into the OSDB files they hold (``*.json``, ``*.ndjson``, ``*.jsonl`` and
    their ``.gz``, any letter case), sorted, skipping hidden files; keep files as given.

    Raises
    ------
    InputError
        If a path does not exist, or a folder holds no OSDB files.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if str(p) == "":
            raise InputError("cannot read events: an empty path was given")
        if p.is_dir():
            found = sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith(".")
                           and c.name.lower().endswith(_SUFFIXES))
            if not found:
                raise InputError(f"cannot read events: folder {p} holds no .json or .ndjson "
                                 "files")
            out.extend(found)
        elif not p.exists():
            raise InputError(f"cannot read events: {p} does not exist")
        else:
            out.append(p)
    return out
