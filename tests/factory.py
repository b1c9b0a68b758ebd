"""Hand-made OSDB events and files for tests: exact control over times, values and damage."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def iso(t: float, z: bool = True) -> str:
    s = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return s + ("Z" if z else "")


def datapoint(t: float, value: float = 1000.0, n: int = 125, xyz: bool = False, **extra) -> dict:
    """One datapoint at time `t` (POSIX s), all samples `value` mg (a ramp if value is None)."""
    raw = [float(value + i) for i in range(n)] if value is not None else list(range(n))
    dp = {"dataTime": iso(t), "rawData": raw, "hr": 70, "alarmState": 0}
    if xyz:
        dp["rawData3D"] = [0, 0, int(value)] * n
    dp.update(extra)
    return dp


def event(event_id, n_dp: int, *, t0: float = T0, step: float = 5.0, type: str = "Seizure",
          user=1, subtype="Tonic-Clonic", value: float = 1000.0, xyz: bool = False,
          **extra) -> dict:
    """An event of `n_dp` contiguous datapoints, `step` seconds apart, starting after `t0`."""
    dps = [datapoint(t0 + step * (i + 1), value + i, xyz=xyz) for i in range(n_dp)]
    ev = {"id": event_id, "userId": user, "type": type, "subType": subtype, "desc": "",
          "dataTime": iso(t0 + step * n_dp / 2), "dataSourceName": "Garmin", "datapoints": dps}
    ev.update(extra)
    return ev


def write_events(path: Path, events: list[dict], fmt: str = "json") -> Path:
    """Write events as a JSON array ("json"), NDJSON ("ndjson") or gzip JSON ("gz")."""
    path = Path(path)
    if fmt == "ndjson":
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
    elif fmt == "gz":
        with gzip.open(path, "wt") as f:
            json.dump(events, f)
    else:
        path.write_text(json.dumps(events, indent=1))
    return path
