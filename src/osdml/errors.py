"""The error classes every osdml command maps to an exit status.

``InputError`` (bad file, bad option, bad configuration) exits 2; ``CheckFailed`` (a parity or
validation check that ran and failed) exits 1. Messages are one line: what failed, which file or
parameter, what was found, what was expected, and what to do.
"""

from __future__ import annotations


class OsdmlError(Exception):
    """Base class of the errors osdml reports as one line. ``exit_code`` is the CLI status."""

    exit_code = 2


class InputError(OsdmlError):
    """Bad input: a file that cannot be read as what it should be, or an invalid option."""

    exit_code = 2


class CheckFailed(OsdmlError):
    """A check that ran and failed (validation, parity): exit status 1."""

    exit_code = 1


class TrainingDiverged(InputError):
    """Training produced non-finite outputs: the configuration (learning rate, weight decay)
    does not fit the data."""


class ExportError(OsdmlError):
    """An export stage (torch.export, lowering, serialisation) failed on a valid model."""

    exit_code = 1
