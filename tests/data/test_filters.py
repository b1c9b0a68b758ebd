"""Event selection and labels."""

from __future__ import annotations

import pytest

from factory import event, write_events
from osdml.config import SelectionConfig
from osdml.data.cache import load_streams
from osdml.data.filters import select_events


@pytest.fixture
def streams(tmp_path):
    events = [
        event(1, 6, user=39, type="Seizure", subtype="Tonic-Clonic"),
        event(2, 6, user=139, type="seizure", subtype=None, desc="arm shaking"),
        event(3, 6, user=39, type="False Alarm", subtype="Brushing Teeth"),
        event(4, 6, user=39, type="NDA", subtype=None, dataSourceName="PineTime"),
        event(5, 6, user=45, type="Fall", subtype=None),
        event(6, 6, user=45, type="Unknown", subtype=None),
        event(7, 6, user=45, type="SEIZURE", subtype="Aura", xyz=True),
    ]
    return load_streams([write_events(tmp_path / "e.json", events)], cache=False)


def ids(streams, sel):
    return [streams.events[i].id for i in sel.indices]


def test_default_labels_and_unlabelled_types_counted(streams):
    sel = select_events(streams)
    assert ids(streams, sel) == ["1", "2", "3", "4", "7"]
    assert sel.labels.tolist() == [1, 1, 0, 0, 1]
    assert sel.excluded == {"unlabelled type 'Fall'": 1, "unlabelled type 'Unknown'": 1}


def test_users_match_exactly_not_as_substrings(streams):
    sel = select_events(streams, SelectionConfig(include_users=[39]))
    assert ids(streams, sel) == ["1", "3", "4"]  # never user 139
    sel = select_events(streams, SelectionConfig(exclude_users=["39"]))
    assert ids(streams, sel) == ["2", "7"]


@pytest.mark.parametrize("cfg, expected", [
    ({"include_types": ["SEIZURE"]}, ["1", "2", "7"]),
    ({"exclude_types": ["false alarm", "nda"]}, ["1", "2", "7"]),
    ({"include_subtypes": ["tonic-clonic", "null"]}, ["1", "2", "4"]),
    ({"exclude_subtypes": ["aura"]}, ["1", "2", "3", "4"]),
    ({"include_sources": ["PineTime"]}, ["4"]),
    ({"exclude_sources": ["Garmin"]}, ["4"]),
    ({"include_desc": ["SHAKING"]}, ["2"]),
    ({"exclude_desc": ["shaking"]}, ["1", "3", "4", "7"]),
    ({"require_3d": True}, ["7"]),
    ({"invalid_event_ids": [1, "3"]}, ["2", "4", "7"]),
])
def test_filters(streams, cfg, expected):
    assert ids(streams, select_events(streams, SelectionConfig(**cfg))) == expected


def test_require_hr_needs_every_datapoint(streams):
    streams.events[0].n_datapoints_hr -= 1
    sel = select_events(streams, SelectionConfig(require_hr=True))
    assert "1" not in ids(streams, sel)
    assert sel.excluded["no heart rate"] == 1


def test_custom_label_map_can_add_a_type(streams):
    sel = select_events(streams, SelectionConfig(labels={"seizure": 1, "fall": 0}))
    assert ids(streams, sel) == ["1", "2", "5", "7"]
    assert sel.excluded["unlabelled type 'NDA'"] == 1


def test_labels_for(streams):
    sel = select_events(streams)
    assert sel.labels_for([6, 0, 2]).tolist() == [1, 1, 0]
    with pytest.raises(KeyError):
        sel.labels_for([4])  # Fall: not selected
