"""``python -m osdml.cli``."""

from osdml.cli import entry

entry()
