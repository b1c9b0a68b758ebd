"""Waiting on real osdml processes in tests: for an interruption point, and for the end."""

from __future__ import annotations

import subprocess
import time

import pytest


def wait_for(proc, condition, timeout=240, kill=None):
    """Poll `condition` until true; fail if `proc` ends first or `timeout` s pass (then
    `kill(proc)`, default ``proc.kill()``)."""
    t0 = time.monotonic()
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"finished before the interruption point: {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            (kill or subprocess.Popen.kill)(proc)
            pytest.fail("interruption point never reached")
        time.sleep(0.02)


def ended(proc, timeout, why, kill=None) -> int:
    """`proc`'s exit status; fail with `why` if it runs past `timeout` s (then `kill(proc)`)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        (kill or subprocess.Popen.kill)(proc)
        pytest.fail(why)
