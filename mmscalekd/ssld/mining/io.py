"""Crash-safe files of the mining tool: atomic writes, leftovers of killed runs, file lists.

Every file is written to a hidden temporary file next to its final name (``.NAME.tmp-PID``),
flushed and renamed over the final name with :func:`os.replace` (atomic within one folder on
POSIX and Windows; :func:`mmscalekd.utils.atomic_io.replace_atomically`). A run killed while
writing leaves the previous file untouched and at most a temporary file, which
:func:`remove_stale_temporaries` deletes at the next start.
"""
from __future__ import annotations

import json
import os
from typing import List, Sequence

import numpy as np

from mmscalekd.datasets.unlabeled_image_folder import format_file_list_line
from mmscalekd.utils.atomic_checkpoint import atomic_write_text
from mmscalekd.utils.atomic_io import find_pid_temporaries
from mmscalekd.utils.atomic_io import replace_atomically as atomic_write


def atomic_write_json(path: str, obj: object) -> None:
    """Replace ``path`` by ``obj`` as indented JSON, atomically (non-ASCII escaped)."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + '\n')


def atomic_save_npz(path: str, **arrays: np.ndarray) -> None:
    """``np.savez(path, **arrays)``, atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def write_file_list(path: str, rel_paths: Sequence[str]) -> None:
    """Write a file list that :func:`mmscalekd.datasets.unlabeled_image_folder.read_file_list`
    (and so ``UnlabeledImageFolder(ann_file=...)``) reads back exactly, atomically.

    Args:
        path (str): Destination, UTF-8, one entry per line.
        rel_paths (Sequence[str]): The entries, in order; any legal file name (spaces, a
            leading ``#``, quotes, unicode, undecodable bytes) round-trips.
    """
    atomic_write_text(path, ''.join(format_file_list_line(p) + '\n' for p in rel_paths))


def remove_stale_temporaries(folder: str) -> List[str]:
    """Delete the temporary files that killed writes left in ``folder`` (not recursive).

    Only names of the form ``.NAME.tmp-PID`` (what :func:`atomic_write` creates) are removed.
    Call it before this run writes anything into ``folder``.

    Args:
        folder (str): The folder to clean; nothing happens if it does not exist.

    Returns:
        List[str]: The removed files.
    """
    removed = []
    for tmp in find_pid_temporaries(folder, stale_only=False):  # no write runs yet
        os.remove(tmp.path)
        removed.append(tmp.path)
    return removed
