"""The parse cache: keyed by file content and reader options; a hit skips parsing."""

from __future__ import annotations

import shutil

import numpy as np

from factory import event, write_events
from osdml.config import ReaderConfig
from osdml.data import cache as cache_mod
from osdml.data.cache import load_streams


def _count_parses(monkeypatch):
    calls = []
    real = cache_mod.read_events

    def counting(*a, **k):
        calls.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(cache_mod, "read_events", counting)
    return calls


def test_second_run_skips_parsing_and_gives_the_same_streams(tmp_path, monkeypatch):
    path = write_events(tmp_path / "a.json", [event(1, 8), event(2, 9, type="NDA")])
    calls = _count_parses(monkeypatch)
    first = load_streams([path])
    second = load_streams([path])
    assert len(calls) == 1
    assert not first.from_cache and second.from_cache
    assert np.array_equal(first.samples, second.samples)
    assert np.array_equal(first.segments, second.segments)
    assert [e.id for e in second.events] == ["1", "2"]
    assert second.report.to_dict() == first.report.to_dict()
    assert isinstance(second.samples, np.memmap)


def test_changed_content_or_options_miss_the_cache(tmp_path, monkeypatch):
    path = write_events(tmp_path / "a.json", [event(1, 8)])
    calls = _count_parses(monkeypatch)
    load_streams([path])
    write_events(path, [event(1, 8, value=1200)])
    changed = load_streams([path])
    assert len(calls) == 2 and changed.samples[0] == np.float32(1.2)
    load_streams([path], ReaderConfig(max_gap_s=5))
    assert len(calls) == 3


def test_same_content_elsewhere_hits_and_reports_the_new_path(tmp_path, monkeypatch):
    path = write_events(tmp_path / "a.json", [event(1, 8)])
    load_streams([path])
    copy = tmp_path / "moved" / "b.json"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    calls = _count_parses(monkeypatch)
    s = load_streams([copy])
    assert s.from_cache and not calls
    assert s.report.files == [str(copy)] and s.events[0].file == str(copy)


def test_unreadable_cache_entry_is_rebuilt(tmp_path, monkeypatch):
    path = write_events(tmp_path / "a.json", [event(1, 8)])
    load_streams([path])
    entry = next((tmp_path / "cache" / "streams").iterdir())
    (entry / "events.json").write_text("{broken")
    calls = _count_parses(monkeypatch)
    s = load_streams([path])
    assert len(calls) == 1 and s.n_events == 1


def test_no_cache_writes_nothing(tmp_path):
    path = write_events(tmp_path / "a.json", [event(1, 8)])
    load_streams([path], cache=False)
    assert not (tmp_path / "cache").exists()


def test_failed_parse_leaves_no_cache_entry(tmp_path):
    good = write_events(tmp_path / "a.json", [event(1, 8)])
    bad = tmp_path / "b.json"
    bad.write_text("[{")
    try:
        load_streams([good, bad])
    except Exception:
        pass
    streams_dir = tmp_path / "cache" / "streams"
    assert not streams_dir.exists() or not list(streams_dir.iterdir())
