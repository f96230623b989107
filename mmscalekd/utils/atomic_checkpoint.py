"""Crash-safe checkpoint writing for :class:`mmscalekd.engine.SafeCheckpointHook`.

A thin layer over :func:`mmscalekd.utils.atomic_io.replace_atomically`: a temporary file in
the same folder, fsynced, renamed over the target (:func:`os.replace` is atomic on POSIX and
Windows within one folder), so a reader sees either the previous file or the complete new
one. A process killed while writing leaves at most a hidden ``.<name>.tmp-<pid>`` file, which
``SafeCheckpointHook`` removes at the next start. Used for checkpoints and
``last_checkpoint``.
"""
from __future__ import annotations

from typing import Any

import torch

from .atomic_io import fsync_replace, replace_atomically
from .atomic_io import pid_temporary_path as temporary_name

__all__ = ['temporary_name', 'fsync_replace', 'atomic_torch_save', 'atomic_write_text']


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` that never leaves a partial file at ``path``.

    Args:
        obj: What to save.
        path (str): Local destination.
    """
    replace_atomically(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str, text: str) -> None:
    """Replace the text file ``path`` by ``text`` atomically."""
    replace_atomically(path, lambda f: f.write(text.encode('utf-8')))
