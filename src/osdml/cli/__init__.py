"""The ``osdml`` command line: parse options, call the library, render results.

This package is the only place that prints; one module per command group (``data``,
``train``, ``replay``, ``models``, ``publish``), shared pieces in ``common``. Errors become one
line on stderr (``osdml: error: ...``) with exit status 2 for bad input or usage and 1 for a
failed check; ``--debug`` shows the traceback instead. Heavy modules (numpy, torch, lightning,
executorch) are imported inside the commands, so ``osdml --help`` starts fast.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
import warnings

from osdml.cli.common import STATE, app
from osdml.errors import OsdmlError

# each command module registers its commands on `app` when imported, in --help's order
COMMAND_MODULES = ("data", "train", "replay", "models", "publish")
for _module in COMMAND_MODULES:
    importlib.import_module(f"osdml.cli.{_module}")

# --------------------------------------------------------------------------- entry point

def _one_line(message: object) -> str:
    """A message as one printable line, whatever a file name or library text holds."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(f"osdml: warning: {_one_line(message)}\n")


def _setup_messages(verbose: bool) -> None:
    """osdml's own warnings and log lines, one line each; the libraries' chatter (torch,
    torchao, executorch, lightning deprecations and start-up notes) only with --verbose."""
    logging.basicConfig(format="osdml: %(message)s",
                        level=logging.WARNING if verbose else logging.ERROR)
    logging.getLogger("osdml").setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("torch", "torchao", "executorch", "lightning"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)
    warnings.showwarning = _warning_line
    if not verbose:
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module=r"osdml(\.|$)")


GLOBAL_FLAGS = ("--debug", "--verbose", "-v")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 check failed, 2 bad input or usage, 3 a
    bug). Every error is one line on stderr; ``--debug`` (anywhere on the line) adds the
    traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    flags = {a for a in args[:cut] if a in GLOBAL_FLAGS}
    args = [a for a in args[:cut] if a not in GLOBAL_FLAGS] + args[cut:]
    STATE["debug"] = "--debug" in flags
    STATE["verbose"] = bool(flags & {"--verbose", "-v"})
    STATE["interrupt_reported"] = False  # a command that said what an interruption left
    _setup_messages(verbose=STATE["verbose"])
    try:
        rv = app(args=args, prog_name="osdml", standalone_mode=False)
    except OsdmlError as e:
        return _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("osdml: interrupted\n")
        return 130
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        return _fail(f"{e.strerror or e}{where}", 2)
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click usage errors
            if not e.format_message():  # no arguments: the help was printed, nothing to add
                return 2
            ctx = getattr(e, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            return _fail(e.format_message() + hint, 2 if e.exit_code == 2 else e.exit_code)
        if type(e).__name__ == "Abort":  # click's Ctrl-C / EOF on a prompt
            sys.stderr.write("osdml: interrupted\n")
            return 130
        # a bug: say so in one line, traceback with --debug
        return _fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug and report "
                     "it)", 3)
    if rv == 130 and not STATE.get("interrupt_reported"):  # typer: Ctrl-C -> silent 130
        sys.stderr.write("osdml: interrupted; files already written are complete, none is "
                         "half-written\n")
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    """The ``osdml`` console script (and ``python -m osdml``): ``main``, then exit.

    After Ctrl-C (status 130) the process ends as soon as the libraries' exit handlers have
    run (Ray's shutdown, multiprocessing's worker clean-up, logging's flush): the interpreter's
    own teardown of torch and Lightning (freeing modules and C++ state) would take 2-3 s more
    and saves nothing, since every file osdml writes is complete or removed by then."""
    code = main()
    if code == 130:
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> None:
    import atexit
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C cannot cut the handlers
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _fail(message: str, code: int) -> int:
    if STATE["debug"]:
        traceback.print_exc()
    sys.stderr.write(f"osdml: error: {_one_line(message)}\n")
    return code
