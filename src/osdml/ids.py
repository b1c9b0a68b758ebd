"""Event and user ids as osdml compares them: strings.

Real OSDB releases use int ids, generated files use strings, and some tools write ints as
floats (``39.0``). All become the same string, so user 39 is one user whichever way a file
wrote it.
"""

from __future__ import annotations

import math
import re
from typing import Any


def normalize_id(value: Any) -> str | None:
    """The canonical string of an id, or None when `value` cannot be an id.

    >>> normalize_id(39), normalize_id(39.0), normalize_id(" 39 "), normalize_id("39.0")
    ('39', '39', '39', '39')
    >>> normalize_id("S001"), normalize_id("0039")
    ('S001', '0039')
    >>> normalize_id(True), normalize_id([1]), normalize_id(""), normalize_id(1.5)
    (None, None, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value == int(value) else None
    if isinstance(value, str):
        s = value.strip()
        if _INTEGRAL.fullmatch(s):  # "39.0" as written by some tools is user 39
            return str(int(float(s)))
        return s or None
    return None


_INTEGRAL = re.compile(r"-?\d+\.0+")
