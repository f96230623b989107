"""Run demo tasks in worker processes, one thread each, with one log per task.

Each worker is a fresh ``spawn`` process with ``threads`` torch threads that runs tasks one
after another; while a task runs, the worker's stdout and stderr go to the task's log file.
With ``threads=1`` a task computes exactly what it computes alone, so the numbers do not depend
on ``jobs`` (two workers on two cores gave ~24 % more throughput than one run with two threads).
"""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from .runs import Task

#: ``on_event(kind, index, payload)``: kind is ``'start'`` (payload None), ``'progress'``
#: (``(iteration, max_iters)``), ``'done'`` (the result) or ``'error'`` (the traceback).
OnEvent = Callable[[str, int, Any], None]
_THREAD_VARS = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS')


class TaskFailed(RuntimeError):
    """A task raised; ``task`` and ``traceback`` say which and why."""

    def __init__(self, task: Task, tb: str) -> None:
        last = tb.strip().splitlines()[-1] if tb.strip() else 'unknown error'
        super().__init__(f'{task.name} failed: {last} (full log: {task.log})')
        self.task = task
        self.traceback = tb


@contextlib.contextmanager
def _redirect_output(path: str) -> Iterator[None]:
    """Send this process's stdout/stderr (file descriptors 1 and 2) to ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, 'a', buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _worker(tasks: Any, events: Any, threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    from mmscalekd.utils import register_all_modules

    from .runs import execute
    register_all_modules()
    while True:
        item = tasks.get()
        if item is None:
            return
        index, task = item
        events.put(('start', index, None))
        with _redirect_output(task.log):
            try:
                result = execute(task, lambda it, total: events.put(
                    ('progress', index, (it, total))))
            except BaseException:  # noqa: B902  (reported to the parent, which stops)
                traceback.print_exc()
                events.put(('error', index, traceback.format_exc()))
                continue
        events.put(('done', index, result))


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(threads) for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_tasks(tasks: Sequence[Task], jobs: int, threads: int = 1,
              on_event: Optional[OnEvent] = None) -> List[Dict[str, Any]]:
    """Run ``tasks`` in ``jobs`` worker processes; return their results in task order.

    Tasks are handed out in the given order (put the longest first). The first failure stops
    everything: the other workers are terminated and :class:`TaskFailed` is raised.

    Args:
        tasks (Sequence[Task]): What to run.
        jobs (int): Worker processes (at most ``len(tasks)`` are started).
        threads (int): Torch threads per worker. Defaults to 1.
        on_event (OnEvent, optional): Progress callback, called in this process.

    Returns:
        List[dict]: :func:`mmscalekd.demo.runs.execute`'s result for every task.
    """
    if not tasks:
        return []
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f'jobs must be a positive int, got {jobs!r}')
    ctx = mp.get_context('spawn')
    task_queue, events = ctx.Queue(), ctx.Queue()
    for item in enumerate(tasks):
        task_queue.put(item)
    workers = []
    with _thread_env(threads):
        for _ in range(min(jobs, len(tasks))):
            task_queue.put(None)
            proc = ctx.Process(target=_worker, args=(task_queue, events, threads), daemon=True)
            proc.start()
            workers.append(proc)
    results: List[Optional[Dict[str, Any]]] = [None] * len(tasks)
    remaining = len(tasks)
    try:
        while remaining:
            try:
                kind, index, payload = events.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in workers if not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise RuntimeError(
                        f'a demo worker process died (exit code {dead[0].exitcode}; killed for '
                        'memory?) before finishing its run; see the runs\' run.log files')
                continue
            if on_event is not None:
                on_event(kind, index, payload)
            if kind == 'error':
                raise TaskFailed(tasks[index], payload)
            if kind == 'done':
                results[index] = payload
                remaining -= 1
    finally:
        for proc in workers:
            if proc.is_alive() and remaining:
                proc.terminate()
        for proc in workers:
            proc.join(timeout=30)
        task_queue.close()
        events.close()
    return results  # type: ignore[return-value]


class Progress:
    """One line for the whole demo: runs done, share of the work, elapsed time and ETA.

    The share weighs every task by its estimated cost (:attr:`Task.cost`) and a running task by
    its finished iterations; the ETA extrapolates the time since the first task started (the
    workers' start-up is not work that scales).
    On a terminal the line is rewritten in place; otherwise it is printed at most every
    ``every_s`` seconds.

    Args:
        tasks (Sequence[Task]): All the tasks of the phase.
        stream: Where to write. Defaults to ``sys.stdout``.
        every_s (float): Minimum seconds between printed lines off a terminal. Defaults to 30.
    """

    def __init__(self, tasks: Sequence[Task], stream: Any = None, every_s: float = 30.0,
                 label: str = 'runs') -> None:
        self.tasks = list(tasks)
        self.stream = stream or sys.stdout
        self.every_s = every_s
        self.label = label
        self.start = time.monotonic()
        self.first_start: Optional[float] = None
        self.fraction = [0.0] * len(self.tasks)
        self.running: set = set()
        self.done = 0
        self._last_print = 0.0
        self._tty = bool(getattr(self.stream, 'isatty', lambda: False)())
        self._line_len = 0

    @property
    def share(self) -> float:
        total = sum(t.cost for t in self.tasks) or 1.0
        return sum(t.cost * f for t, f in zip(self.tasks, self.fraction)) / total

    def eta_s(self) -> Optional[float]:
        share = self.share
        if share <= 0.0:
            return None
        working = time.monotonic() - (self.first_start or self.start)
        return working * (1.0 - share) / share

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = self.eta_s()
        return (f'[demo] {self.done}/{len(self.tasks)} {self.label} done, '
                f'{len(self.running)} running | {100 * self.share:3.0f} % | '
                f'{_clock(elapsed)} elapsed | ETA {_clock(eta) if eta is not None else "--"}')

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._tty:
            text = self.line()
            self.stream.write('\r' + text.ljust(self._line_len))
            self._line_len = len(text)
            self.stream.flush()
        elif force or now - self._last_print >= self.every_s:
            self._last_print = now
            print(self.line(), file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """Print ``text`` on its own line (above the progress line on a terminal)."""
        if self._tty and self._line_len:
            self.stream.write('\r' + ' ' * self._line_len + '\r')
            self._line_len = 0
        print(text, file=self.stream, flush=True)
        self._show()

    def __call__(self, kind: str, index: int, payload: Any) -> None:
        if kind == 'start':
            self.running.add(index)
            if self.first_start is None:
                self.first_start = time.monotonic()
        elif kind == 'progress':
            it, total = payload
            # Training is most of a run; its evaluations the rest.
            self.fraction[index] = 0.9 * min(1.0, it / max(1, total))
        elif kind in ('done', 'error'):
            self.running.discard(index)
            if kind == 'done':
                self.fraction[index] = 1.0
                self.done += 1
        self._show(force=kind == 'done')

    def close(self) -> None:
        if self._tty and self._line_len:
            self.stream.write('\n')
            self.stream.flush()
            self._line_len = 0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 60}:{seconds % 60:02d}'
