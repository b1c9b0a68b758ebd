"""Hand-made EventTraces: exact control over p, movement, OSD votes and recorded states."""

from __future__ import annotations

import numpy as np

from osdml.evaluate.events import EventTrace


def trace(p, label=0, recording_s=None, seizure_start_s=None, movement=None, osd=None,
          recorded=None, subtype=None, user="u1", id="e", models=None) -> EventTrace:
    """An event of len(p) datapoints 5 s apart (t = 5, 10, ...). `p`: one model's p per
    datapoint (None = buffer not full) or a list of such lists for several models; `osd`: the
    OSD algorithm's vote per datapoint (bools); `recorded`: the app's recorded alarmState."""
    rows = p if len(p) and isinstance(p[0], list | tuple) else [p]
    arr = np.array([[np.nan if v is None else v for v in r] for r in rows],
                   dtype=np.float32).reshape(len(rows), -1)
    n = arr.shape[1]
    votes = np.zeros(n, bool) if osd is None else np.asarray(osd, bool)
    # a vote: roiPower 200 > 100 and 10 x 200 / 1 > 57; no vote: roiPower 0
    table = np.column_stack([np.ones(n), np.where(votes, 200, 0), np.full(n, 100),
                             np.full(n, 57), np.full(n, -1), np.full(n, -1)]).astype(np.int64)
    return EventTrace(
        id=id, user=user, type="Seizure" if label else "False Alarm", subtype=subtype,
        label=label, recording_s=recording_s if recording_s is not None else 5.0 * n,
        seizure_start_s=seizure_start_s, t_s=5.0 * (np.arange(n) + 1), p=arr,
        models=models or [f"m{i}" for i in range(len(arr))],
        movement_pct=np.full(n, 20.0) if movement is None else np.asarray(movement, float),
        osd=table,
        recorded_state=np.full(n, -1, np.int8) if recorded is None
        else np.asarray(recorded, np.int8),
        datapoint=np.arange(n), data_time_s=1.7e9 + 5.0 * np.arange(n))
