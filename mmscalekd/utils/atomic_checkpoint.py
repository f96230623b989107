"""Crash-safe file writing: a temporary file in the same folder, fsynced, renamed over the target.

:func:`os.replace` is atomic on POSIX and Windows for a rename within one folder,
so a reader sees either the previous file or the complete new one, never a
partial one. A process killed while writing leaves at most a hidden
``.<name>.tmp-<pid>`` file, which :class:`mmscalekd.engine.SafeCheckpointHook`
removes at the next start. Used by ``SafeCheckpointHook`` for checkpoints and
``last_checkpoint``.
"""
from __future__ import annotations

import io
import os
import os.path as osp
from typing import Any, Callable

import torch


def temporary_name(path: str) -> str:
    """``<folder>/.<name>.tmp-<pid>``: where ``path`` is written before the rename."""
    folder, name = osp.split(osp.abspath(str(path)))
    return osp.join(folder, f'.{name}.tmp-{os.getpid()}')


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_replace(tmp: str, path: str) -> None:
    """Flush the complete file ``tmp`` to disk and rename it over ``path``."""
    with open(tmp, 'rb') as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_folder(osp.dirname(osp.abspath(path)))


def _atomic_write(path: str, write: Callable[[io.BufferedWriter], None]) -> None:
    path = str(path)
    if path.startswith('file://'):
        path = path[len('file://'):]
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = temporary_name(path)
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(osp.dirname(osp.abspath(path)))


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` that never leaves a partial file at ``path``.

    Args:
        obj: What to save.
        path (str): Local destination.
    """
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str, text: str) -> None:
    """Replace the text file ``path`` by ``text`` atomically."""
    _atomic_write(path, lambda f: f.write(text.encode('utf-8')))
