"""Where independent trainings run: in this process, one after the other, or as Ray tasks.

``osdml run`` trains its folds through an executor, and so can anything else that trains
several models independently (ensemble members). An executor maps a function over jobs:

    with make_executor(cfg.executor) as ex:
        for job, result in ex.map_unordered(fn, jobs, on_start=...):
            ...

- ``LocalExecutor`` calls ``fn(job)`` in this process, in the order of `jobs`, and yields each
  result as soon as it is computed (today's behaviour of ``osdml run``).
- ``RayExecutor`` runs each ``fn(job)`` as a Ray task with ``cpus_per_task`` CPUs and
  ``gpus_per_task`` GPUs (torch in the task uses ``max(1, int(cpus_per_task))`` threads) on a
  local Ray instance it starts (and shuts down) or on an existing cluster (``auto``,
  ``ray://host:port``), and yields results in the order they complete.

`fn` must be a module-level function and every job picklable and small: a task re-opens its
data itself (from paths on a file system every node sees), nothing large is shipped. A job that
raises stops the map: the executor cancels the jobs still running and raises ``JobFailed`` with
the job and its original exception (an osdml error raised in a Ray task arrives as itself, not
as Ray's wrapper). Ctrl-C in the driver cancels the running tasks and propagates.

Ray is optional (``pip install 'osdml[ray]'``); nothing here imports it unless a Ray executor
is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from osdml.config import ExecutorConfig
from osdml.errors import InputError, OsdmlError

RAY_INSTALL = "pip install 'osdml[ray]'"


class JobFailed(Exception):
    """A job raised: ``job`` is the job, ``error`` its exception (unwrapped from Ray's)."""

    def __init__(self, job: Any, error: BaseException):
        super().__init__(f"{job!r}: {error}")
        self.job, self.error = job, error


class Executor(Protocol):
    """What ``make_executor`` returns (a context manager)."""

    #: True when ``fn`` runs in this process (so it may use objects already loaded here).
    in_process: bool

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc) -> None: ...

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Iterable[Any], *,
                      on_start: Callable[[Any], None] | None = None
                      ) -> Iterator[tuple[Any, Any]]: ...


def make_executor(cfg: ExecutorConfig | None = None, **ray_init: Any) -> Executor:
    """The executor `cfg` describes (``kind`` local or ray).

    Parameters
    ----------
    cfg : ExecutorConfig, optional
        Default: local.
    **ray_init
        Extra ``ray.init`` arguments for a local Ray instance (``num_cpus=2``); ignored by the
        local executor.

    Raises
    ------
    InputError
        If ``kind`` is ray and Ray is not installed (the message gives the install command).
    """
    cfg = cfg or ExecutorConfig()
    if cfg.kind == "ray":
        return RayExecutor(cfg, **ray_init)
    return LocalExecutor()


class LocalExecutor:
    """Each job in this process, one after the other, in the order given."""

    in_process = True

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Iterable[Any], *,
                      on_start: Callable[[Any], None] | None = None
                      ) -> Iterator[tuple[Any, Any]]:
        """Yield ``(job, fn(job))`` for each job in order; ``on_start(job)`` just before each.

        Raises
        ------
        JobFailed
            If ``fn(job)`` raises an ``Exception`` (``KeyboardInterrupt`` propagates as is).
        """
        for job in jobs:
            if on_start is not None:
                on_start(job)
            try:
                result = fn(job)
            except Exception as e:
                raise JobFailed(job, e) from e
            yield job, result


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InputError(f"the ray executor needs Ray: {RAY_INSTALL}") from None
    return ray


def _run_task(fn: Callable[[Any], Any], threads: int, job: Any) -> Any:
    """A Ray task: `fn(job)` with torch limited to `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    return fn(job)


class RayExecutor:
    """Each job as a Ray task, on a local Ray instance or an existing cluster.

    Parameters
    ----------
    cfg : ExecutorConfig
        ``ray_address`` (None: start a local instance), ``cpus_per_task``, ``gpus_per_task``.
    **ray_init
        Extra ``ray.init`` arguments for a local instance, e.g. ``num_cpus=2``.

    Raises
    ------
    InputError
        If Ray is not installed; on entry, if the cluster cannot be reached.
    """

    in_process = False

    def __init__(self, cfg: ExecutorConfig, **ray_init: Any):
        self.ray = _import_ray()
        self.cfg, self.ray_init = cfg, ray_init
        self.started = False

    @property
    def threads(self) -> int:
        """Torch threads of each task: its CPU share, at least 1."""
        return max(1, int(self.cfg.cpus_per_task))

    def __enter__(self) -> RayExecutor:
        ray = self.ray
        if ray.is_initialized():  # someone else's instance: use it, leave it running
            return self
        import os

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kw: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if self.cfg.ray_address is None:
            kw.update(include_dashboard=False, **self.ray_init)
        try:
            ray.init(address=self.cfg.ray_address, **kw)
        except (ConnectionError, ValueError, RuntimeError, TimeoutError) as e:
            where = self.cfg.ray_address or "a local Ray instance"
            hint = ("; is the cluster's client server up, and RAY_AUTH_MODE=token set with "
                    "its token if it uses token authentication?"
                    if where.startswith("ray://") else "")
            raise InputError(f"cannot start the ray executor on {where}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}{hint}"
                             ) from None
        self.started = True
        return self

    def __exit__(self, *exc) -> None:
        if self.started:
            self.started = False
            self.ray.shutdown()

    def map_unordered(self, fn: Callable[[Any], Any], jobs: Iterable[Any], *,
                      on_start: Callable[[Any], None] | None = None
                      ) -> Iterator[tuple[Any, Any]]:
        """Submit every job, then yield ``(job, result)`` as each task completes.

        ``on_start(job)`` is called as each job is submitted. Leaving the loop early (an
        exception, Ctrl-C, ``break``) cancels the tasks still running.

        Raises
        ------
        JobFailed
            If a task raised (``error``: its own exception for osdml errors, otherwise Ray's
            ``RayTaskError`` with the remote traceback) or its worker died.
        """
        ray = self.ray
        task = ray.remote(_run_task).options(num_cpus=self.cfg.cpus_per_task,
                                             num_gpus=self.cfg.gpus_per_task)
        pending: dict[Any, Any] = {}
        try:
            for job in jobs:
                if on_start is not None:
                    on_start(job)
                pending[task.remote(fn, self.threads, job)] = job
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    raise JobFailed(job, cause if isinstance(cause, OsdmlError) else e) from None
                except ray.exceptions.RayError as e:  # worker died, task cancelled, ...
                    raise JobFailed(job, e) from None
                yield job, result
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or gone
                    pass
