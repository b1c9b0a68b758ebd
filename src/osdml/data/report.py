"""The data report: what was read from OSDB files and what was skipped, with reasons.

Bad data is normal in OSDB releases; the reader never crashes on it and never invents samples.
Every skipped event and datapoint is counted here under a stable key (``SKIP_REASONS``), and
repairs that keep data (sorting, splitting at gaps, dropping malformed 3-D data) under
``NOTE_REASONS``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Stable keys of the data report, with the sentence shown to users.
SKIP_REASONS = {
    # datapoints
    "no_rawData": "datapoint has no rawData",
    "wrong_length": "rawData has the wrong number of samples",
    "nan_or_null": "rawData holds NaN, Infinity or null samples",
    "non_numeric": "rawData holds non-numeric values",
    "implausible_magnitude": "mean magnitude under the minimum (data in m/s^2, not mg?)",
    "implausible_value": "a sample beyond +-1000 g (reader.max_abs_mg): corrupt values",
    "bad_time": "dataTime missing or unreadable",
    "duplicate_time": "duplicate of an earlier datapoint's time",
    "logging_copy": "logging copy: the same samples as the datapoint before (e.g. a manual "
                    "alarm logged again)",
    # events
    "missing_id": "event has no id",
    "bad_id": "event id is not an int or a non-empty string",
    "no_datapoints": "event has no datapoints list",
    "no_valid_datapoints": "every datapoint of the event was skipped",
    "duplicate_event_id": "event id already read (from this or an earlier file)",
}
NOTE_REASONS = {
    "out_of_order": "datapoints out of time order (sorted, kept)",
    "gap_split": "gaps that split an event into segments",
    "rawData3D_dropped": "rawData3D of wrong length or with NaN (3-D dropped, magnitude kept)",
    "rawData3D_zero": "rawData3D all zero (treated as absent)",
    "no_window": "events shorter than one window (kept, give no windows)",
    "bad_user_id": "userId not an int or string (read as no user)",
    "bad_event_time": "event dataTime unreadable (read as unknown)",
    "bad_seizure_times": "seizureTimes not [start, end] seconds (ignored)",
}

@dataclass
class DataReport:
    """What was read and what was skipped, with a reason for every skipped item.

    ``skipped_events`` and ``skipped_datapoints`` map a key of ``SKIP_REASONS`` to a count;
    ``notes`` counts things that were repaired or are worth knowing (``NOTE_REASONS``), not
    skipped. ``examples`` keeps the first place each reason was seen.
    """

    files: list[str] = field(default_factory=list)
    events_read: int = 0
    datapoints_read: int = 0
    skipped_events: Counter = field(default_factory=Counter)
    skipped_datapoints: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def skip_event(self, reason: str, where: str) -> None:
        self.skipped_events[reason] += 1
        self.examples.setdefault(reason, where)

    def skip_datapoint(self, reason: str, where: str) -> None:
        self.skipped_datapoints[reason] += 1
        self.examples.setdefault(reason, where)

    def note(self, reason: str, where: str, n: int = 1) -> None:
        self.notes[reason] += n
        self.examples.setdefault(reason, where)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "events_read": self.events_read,
            "datapoints_read": self.datapoints_read,
            "skipped_events": dict(sorted(self.skipped_events.items())),
            "skipped_datapoints": dict(sorted(self.skipped_datapoints.items())),
            "notes": dict(sorted(self.notes.items())),
            "examples": dict(sorted(self.examples.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataReport:
        return cls(
            files=list(d["files"]),
            events_read=d["events_read"],
            datapoints_read=d["datapoints_read"],
            skipped_events=Counter(d["skipped_events"]),
            skipped_datapoints=Counter(d["skipped_datapoints"]),
            notes=Counter(d["notes"]),
            examples=dict(d["examples"]),
        )
