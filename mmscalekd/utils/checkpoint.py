"""Checkpoint loading that never executes code stored in a file.

Every checkpoint -- a teacher's weights, ``init_cfg`` Pretrained, ``load_from``,
a URL, the input of ``extract_student.py`` and the Runner's own checkpoints on
resume -- is read with ``torch.load(weights_only=True)``. MMEngine's training
checkpoints also hold the message hub (``HistoryBuffer`` objects) and numpy
scalars; those few *data* types are admitted through a closed allow-list. The one
callable MMEngine's pickles need, ``getattr(HistoryBuffer, '<statistic>')``, is
served by a guard that resolves nothing else. Anything outside the list (a
``__reduce__`` payload calling ``os.system``, say) is refused before it runs.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import zipfile
from typing import Any, Callable, Optional, Union

import numpy as np
import torch

MapLocation = Optional[Union[str, torch.device, Callable]]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds Python objects that could run code when unpickled."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or not a torch checkpoint at all."""


def _guarded_getattr(obj: Any, name: str) -> Any:
    from mmengine.logging import HistoryBuffer
    # ``_statistics_methods`` is filled by the first HistoryBuffer instance, so a
    # fresh process (resume before any buffer exists) knows only the built-in four.
    builtin = ('min', 'max', 'current', 'mean')
    if obj is HistoryBuffer and (name in builtin or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'refused getattr({obj!r}, {name!r}): only HistoryBuffer statistics '
        'may be looked up while loading a checkpoint')


def _allowed_globals() -> list:
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray
    dtype_types = {type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGSUV'}
    return [
        HistoryBuffer,
        (_guarded_getattr, 'builtins.getattr'),
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        *sorted(dtype_types, key=lambda t: t.__name__),
    ]


def safe_torch_load(f: Union[str, os.PathLike], map_location: MapLocation = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and MMEngine's data types allowed.

    Args:
        f (str | PathLike): Path of the checkpoint.
        map_location: As in :func:`torch.load`.

    Raises:
        UnsafeCheckpointError: The file holds objects outside the allow-list.
        CorruptCheckpointError: The file is truncated or not a checkpoint.
    """
    if isinstance(f, (str, os.PathLike)) and osp.isfile(f) and not zipfile.is_zipfile(f):
        with open(f, 'rb') as fh:
            head = fh.read(2)
        if not head.startswith(b'\x80'):  # neither a zip archive nor a legacy torch pickle
            raise CorruptCheckpointError(
                f'Checkpoint {str(f)!r} cannot be read: it is truncated or not a torch '
                f'checkpoint (it starts with {head!r}; a torch.save file is a zip archive).')
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f'Refused to load checkpoint {str(f)!r}: it contains Python objects '
            'that are not tensors, plain containers or MMEngine training state, '
            'and unpickling them could execute code stored in the file. '
            f'Details: {str(err).splitlines()[-1] if str(err) else err!r}. '
            'If you trust the file, convert it to a plain state dict first '
            '(torch.save(model.state_dict(), ...)).') from err
    except (EOFError, zipfile.BadZipFile, RuntimeError, ValueError) as err:
        raise CorruptCheckpointError(
            f'Checkpoint {str(f)!r} cannot be read: it is truncated or not a torch '
            f'checkpoint ({type(err).__name__}: {err}).') from err


def load_checkpoint_file(filename: str, map_location: MapLocation = None) -> Any:
    """MMEngine ``CheckpointLoader`` scheme for local paths (replaces its default).

    Args:
        filename (str): Local path; ``~`` is expanded.
        map_location: As in :func:`torch.load`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist. Pass a local .pth file or an '
            'http(s):// URL.')
    return safe_torch_load(filename, map_location)


def load_url_checkpoint(url: str, map_location: MapLocation = None,
                        model_dir: Optional[str] = None) -> Any:
    """MMEngine ``CheckpointLoader`` scheme for http(s) URLs.

    Downloads once per node (local rank 0 first, then the others from the cache)
    and loads through :func:`safe_torch_load`.
    """
    from mmengine.dist import get_dist_info
    from torch.hub import download_url_to_file, get_dir

    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(url.split('?')[0]))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        download_url_to_file(url, cached, progress=False)
    if world_size > 1:
        torch.distributed.barrier()
        if not osp.isfile(cached):  # another node: its own local rank 0 is absent
            download_url_to_file(url, cached, progress=False)
    return safe_torch_load(cached, map_location)
