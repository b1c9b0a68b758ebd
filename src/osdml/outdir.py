"""Output folders and files that one writer owns: locks, recorded kinds, replace on success.

- ``hold(target, command)``: an exclusive lock on an output (a run folder, a converted file,
  an index) for the time a command writes it. The lock is a file beside the target,
  ``.NAME.lock``, holding the holder's pid, host, command and start time, created atomically
  (written under a temporary name, then hard-linked to the lock name, which fails if it
  exists). A second writer gets one line naming the holder; a lock left by a process that no
  longer runs on this host is stale and taken over.
- ``record_kind`` / ``check_kind``: each folder osdml writes says what it is (``kind.json``:
  ``train``, ``crossval``, ``ensemble``, ``convert`` for a batch's ``-o`` folder), so that a
  command never resumes, replaces or writes into a folder of another kind. Folders written
  before the record existed are recognised by their files.
- ``staging`` / ``swap_in``: ``--replace`` builds the new result in ``.NAME.replacing`` beside
  the old one and swaps it in only when complete; ``recover`` finishes or undoes a swap that a
  killed process left half done.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from osdml.errors import InputError

KIND_FILE = "kind.json"
KIND_COMMANDS = {"train": "osdml train", "crossval": "osdml run", "ensemble": "osdml ensemble",
                 "convert": "osdml convert"}
KIND_NOUNS = {"train": "a training run (osdml train)",
              "crossval": "a cross-validation run (osdml run)",
              "ensemble": "an ensemble (osdml ensemble)",
              "convert": "a conversion batch (osdml convert -o)"}


def lock_path(target: str | os.PathLike) -> Path:
    """``.NAME.lock`` beside `target` (its parent folder), for a folder or a file."""
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name}.lock"


def process_alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _read_holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict) -> str:
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"{holder.get('command', 'osdml')!r}, since {holder.get('started', '?')}")


@contextlib.contextmanager
def hold(target: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the exclusive lock on `target` while the block runs; yield the lock file's path.

    Parameters
    ----------
    target : path-like
        The output (folder or file) about to be written; it need not exist.
    command : str
        What holds it, for the line a second writer sees (``"osdml train --out runs/x"``).

    Raises
    ------
    InputError
        If a live process holds the lock (one line naming its pid, host, command and start),
        or a process on another host does (it cannot be checked: the line names the lock file
        to remove if that process is gone), or the lock cannot be created.
    """
    path = lock_path(target)
    created = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
          "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        for _ in range(3):
            try:
                os.link(tmp, path)
                break
            except FileExistsError:
                holder = _read_holder(path)
                pid = holder.get("pid") if holder else None
                if not isinstance(pid, int) or pid <= 0:  # not an osdml lock (they are linked
                    stale = True                          # complete): nothing holds it
                elif holder.get("host") == me["host"]:
                    stale = not process_alive(pid)
                else:
                    raise InputError(f"{target} is being written by {_describe(holder)}; if "
                                     f"that process is gone, remove {path} and run again"
                                     ) from None
                if not stale:
                    raise InputError(f"{target} is being written by {_describe(holder)}; wait "
                                     "for it to finish, or choose another output") from None
                with contextlib.suppress(FileNotFoundError):  # stale: take it over
                    path.unlink()
        else:
            raise InputError(f"{target}: could not take the lock {path} (taken over by "
                             "another writer as this one tried); run again")
    except OSError as e:
        raise InputError(f"{target}: cannot create the lock {path}: {e.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    try:
        yield path
    finally:  # released by the process that took it (a forked child exiting leaves it)
        if me["pid"] == os.getpid() and (_read_holder(path) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for folder in created:  # made only to hold the lock, and still empty: removed
            with contextlib.suppress(OSError):
                folder.rmdir()


def remove_stale_lock(target: str | os.PathLike) -> bool:
    """Delete `target`'s lock if the process that holds it no longer runs on this host (a
    worker terminated mid-write); return whether it did."""
    path = lock_path(target)
    holder = _read_holder(path)
    pid = holder.get("pid") if holder else None
    if (not isinstance(pid, int) or pid <= 0 or holder.get("host") != socket.gethostname()
            or process_alive(pid)):
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True


def folder_kind(folder: str | os.PathLike) -> str | None:
    """What `folder` holds: ``train``, ``crossval``, ``ensemble`` or ``convert`` (its
    ``kind.json``, or
    for folders written before that record, recognised by their files); None when it holds
    no osdml run."""
    folder = Path(folder)
    record = _read_holder(folder / KIND_FILE)
    if record and record.get("kind") in KIND_COMMANDS:
        return record["kind"]
    if not folder.is_dir():
        return None
    if (folder / "members").is_dir():
        return "ensemble"
    if (folder / "folds").is_dir() or (folder / "run.log").is_file():
        return "crossval"
    if (folder / "split.json").is_file() or (folder / "config.toml").is_file():
        return "train"
    return None


def record_kind(folder: str | os.PathLike, kind: str) -> None:
    """Write ``kind.json`` (``{"kind": ..., "command": ...}``) into `folder`."""
    from osdml.fileio import write_json

    write_json(Path(folder) / KIND_FILE, {"kind": kind, "command": KIND_COMMANDS[kind]})


def check_kind(folder: str | os.PathLike, expected: str, action: str) -> None:
    """Refuse to `action` (``"resume"``, ``"replace"``, or another verb such as ``"write a
    conversion batch into"``) `folder` unless it holds an `expected` kind (or nothing osdml
    wrote).

    Raises
    ------
    InputError
        One line: what the folder holds, and the command that owns it.
    """
    found = folder_kind(folder)
    if found is None or found == expected:
        return
    hint = {"train": f"osdml train --resume --out {folder}",
            "crossval": f"osdml run --resume {folder}",
            "ensemble": f"osdml ensemble --resume --out {folder}",
            "convert": f"the same osdml convert ... -o {folder} again (it converts what is "
                       "missing)"}[found]
    command = KIND_COMMANDS[expected]
    if action == "resume":
        then = f"to continue that one: {hint}"
    elif action == "replace":
        then = (f"{command} does not replace it; choose another output, or remove that folder "
                "yourself")
    else:
        then = "choose another output"
    raise InputError(f"cannot {action} {folder} with {command}: it holds {KIND_NOUNS[found]}; "
                     + then)


def staging(target: str | os.PathLike) -> Path:
    """``.NAME.replacing`` beside `target`: where a replacement is built."""
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name}.replacing"


def _previous(target: Path) -> Path:
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name}.previous"


def swap_in(new: Path, target: Path) -> None:
    """Put the complete folder `new` in place of `target` (which may not exist): `target` is
    moved to ``.NAME.previous``, `new` renamed to `target`, the previous one deleted. A kill
    between the renames is finished by ``recover``."""
    previous = _previous(target)
    if previous.exists():
        shutil.rmtree(previous)
    if target.exists():
        os.replace(target, previous)
    os.replace(new, target)
    shutil.rmtree(previous, ignore_errors=True)


def recover(target: str | os.PathLike, complete: str = "summary.json") -> str | None:
    """Finish or undo what a killed ``swap_in`` left (call with the lock held): `target`
    missing but its replacement complete (holds `complete`) -> the replacement goes in;
    `target` missing and the replacement incomplete -> the previous one goes back; a
    leftover previous folder beside a present `target` is deleted. Returns what was done,
    or None."""
    target = Path(os.path.abspath(target))
    previous, new = _previous(target), staging(target)
    if not previous.exists():
        return None
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        return None
    if new.is_dir() and (new / complete).is_file():
        os.replace(new, target)
        shutil.rmtree(previous, ignore_errors=True)
        return f"{target}: finished replacing it (a previous osdml was stopped mid-swap)"
    os.replace(previous, target)
    return f"{target}: put the previous run back (a replacement was stopped mid-swap)"


def with_locks(fn):
    """Decorator: call `fn` with ``_locks``, a ``contextlib.ExitStack`` that releases every
    lock `fn` entered (``_locks.enter_context(hold(...))``) when it returns or raises."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            return fn(*args, _locks=stack, **kwargs)

    return wrapper
