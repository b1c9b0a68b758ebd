"""The OpenSeizureDetector app's alarm state machine.

Each 5 s datapoint is either positive (p(seizure) >= threshold, or the built-in algorithm's
band-power test passed) or negative. A positive adds 5 s to a counter, a negative removes 5 s;
the counter is capped at 15 s. Counter > 5 s is WARNING, > 10 s is ALARM. So the first positive
changes nothing, the second warns and the third alarms; a negative after ALARM drops to
WARNING, another to OK.
"""

from __future__ import annotations

from collections.abc import Iterable

OK, WARNING, ALARM = 0, 1, 2
STATE_NAMES = {OK: "OK", WARNING: "WARNING", ALARM: "ALARM"}
STEP_S = 5
CAP_S = 15


def alarm_states(positives: Iterable[bool]) -> list[int]:
    """Run the app's state machine over one event's datapoints.

    Parameters
    ----------
    positives : iterable of bool
        One decision per datapoint, in time order.

    Returns
    -------
    list of int
        State after each datapoint: 0 OK, 1 WARNING, 2 ALARM.

    Examples
    --------
    >>> alarm_states([True, True, True, False, False])
    [0, 1, 2, 1, 0]
    """
    count, out = 0, []
    for positive in positives:
        count = min(CAP_S, count + STEP_S) if positive else max(0, count - STEP_S)
        out.append(ALARM if count > 2 * STEP_S else WARNING if count > STEP_S else OK)
    return out
