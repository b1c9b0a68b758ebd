"""Everything that mirrors the OpenSeizureDetector phone app (``APP_CONTRACT.md``).

``engine``: the alarm engine (per-model buffer, movement gate, p > threshold, voting, the
WarnTime / AlarmTime counter); ``osd``: the built-in OSD algorithm; ``tune``: the app's two
settings chosen on validation data; ``index``: the app's models ``index.json`` (publish,
check). One implementation, used by evaluation and replay alike; nothing here imports
training code.
"""
