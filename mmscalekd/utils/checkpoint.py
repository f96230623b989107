"""Checkpoint loading that never executes code stored in a file.

Once :func:`register_safe_loaders` has run (``register_all_modules`` and our
tools call it; importing mmscalekd does not), every checkpoint MMEngine's
``CheckpointLoader`` reads -- a teacher's weights, ``init_cfg`` Pretrained,
``load_from``, a URL, an ``open-mmlab://`` name and the Runner's own checkpoints
on resume -- is read with ``torch.load(weights_only=True)``, and so is the input
of ``extract_student.py`` / ``publish_model.py``. MMEngine's training
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
import warnings
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

    Downloads once per node: local rank 0 (``mmengine.dist.get_local_rank``, i.e.
    ``LOCAL_RANK``) fetches the file into the cache unless it is there, logging one line with
    the URL and the target path (torch hub's progress bar only on a terminal); every rank
    then waits at a barrier and reads the cached file through :func:`safe_torch_load`.

    Args:
        url (str): ``http(s)://`` address of the checkpoint.
        map_location: As in :func:`torch.load`.
        model_dir (str, optional): Download folder. Defaults to torch hub's
            ``checkpoints`` folder.

    Raises:
        FileNotFoundError: After the barrier the file is not in the cache (the download
            of this node's local rank 0 failed; its log says why).
    """
    import sys

    from mmengine.dist import get_dist_info, get_local_rank
    from mmengine.logging import print_log
    from torch.hub import download_url_to_file, get_dir

    model_dir = model_dir or osp.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(url.split('?')[0]))
    _, world_size = get_dist_info()
    local_rank = get_local_rank() if world_size > 1 else 0
    error: Optional[BaseException] = None
    if local_rank == 0 and not osp.isfile(cached):
        print_log(f'Downloading {url} to {cached}', logger='current')
        try:  # torch hub writes a temporary file and moves it into place when complete
            download_url_to_file(url, cached, progress=sys.stderr.isatty())
        except Exception as err:  # reach the barrier first, so the other ranks do not hang
            error = err
    if world_size > 1:
        torch.distributed.barrier()
    if error is not None:
        raise error
    if not osp.isfile(cached):
        raise FileNotFoundError(
            f'{url!r} is not in the download cache ({cached}) after local rank 0 of this node '
            'fetched it; see that rank\'s log for the download error, or download the file '
            'there yourself')
    return safe_torch_load(cached, map_location)


# ------------------------------------------------------------ the schemes we register
# Named load_from_<what>: MMEngine logs "Loads checkpoint by <what> backend" (name[10:]).
def load_from_local_weights_only(filename: str, map_location: MapLocation = None) -> Any:
    """Scheme for local paths: :func:`load_checkpoint_file`."""
    return load_checkpoint_file(filename, map_location)


def load_from_http_weights_only(filename: str, map_location: MapLocation = None) -> Any:
    """Scheme for ``http(s)://`` URLs: :func:`load_url_checkpoint`."""
    return load_url_checkpoint(filename, map_location=map_location)


def load_from_openmmlab_weights_only(filename: str, map_location: MapLocation = None) -> Any:
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: MMEngine's model list, loaded safely."""
    from mmengine.logging import print_log
    from mmengine.runner import checkpoint as mm_checkpoint

    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    name = filename[len(prefix):]
    deprecated = mm_checkpoint.get_deprecated_model_names()
    if name in deprecated:
        print_log(f'{prefix}{name} is deprecated in favor of {prefix}{deprecated[name]}',
                  logger='current', level='WARNING')
        name = deprecated[name]
    urls = mm_checkpoint.get_external_models()
    if name not in urls:
        raise KeyError(f'{filename!r}: MMEngine knows no model {name!r} (see '
                       'mmengine/hub/openmmlab.json); use a local path or an http(s) URL.')
    url = urls[name]
    if url.startswith(('http://', 'https://')):
        return load_url_checkpoint(url, map_location=map_location)
    local = osp.join(mm_checkpoint._get_mmengine_home(), url)
    return load_checkpoint_file(local, map_location)


def load_from_torchvision_weights_only(filename: str, map_location: MapLocation = None) -> Any:
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``), loaded safely."""
    from mmengine.runner import checkpoint as mm_checkpoint

    prefix = 'modelzoo://' if filename.startswith('modelzoo://') else 'torchvision://'
    name = filename[len(prefix):]
    urls = mm_checkpoint.get_torchvision_models()
    if name not in urls:
        raise KeyError(f'{filename!r}: torchvision has no model {name!r}; use a local path or '
                       'an http(s) URL.')
    return load_url_checkpoint(urls[name], map_location=map_location)


def load_from_mmcls_weights_only(filename: str, map_location: MapLocation = None) -> Any:
    """``mmcls://NAME``: an MMClassification backbone, ``backbone.`` prefix stripped."""
    from mmengine.runner import checkpoint as mm_checkpoint

    name = filename[len('mmcls://'):]
    urls = mm_checkpoint.get_mmcls_models()
    if name not in urls:
        raise KeyError(f'{filename!r}: MMEngine knows no mmcls model {name!r}; use a local '
                       'path or an http(s) URL.')
    checkpoint = load_url_checkpoint(urls[name], map_location=map_location)
    state = checkpoint.get('state_dict', checkpoint)
    return dict(state_dict={k[len('backbone.'):]: v for k, v in state.items()
                            if k.startswith('backbone.')})


#: Turns the weights-only loaders off when set to 0 / false / off / no.
SAFE_LOADING_ENV = 'MMSCALEKD_SAFE_LOADING'

_SCHEMES = (
    ('', load_from_local_weights_only),
    (('http://', 'https://'), load_from_http_weights_only),
    (('open-mmlab://', 'openmmlab://'), load_from_openmmlab_weights_only),
    (('modelzoo://', 'torchvision://'), load_from_torchvision_weights_only),
    ('mmcls://', load_from_mmcls_weights_only),
)
_gate_warned = False


def register_safe_loaders() -> bool:
    """Register the weights-only loaders as MMEngine ``CheckpointLoader`` schemes.

    ``CheckpointLoader.register_scheme`` is MMEngine's extension point for
    checkpoint sources. Local paths, http(s) URLs and the ``open-mmlab://``,
    ``openmmlab://``, ``torchvision://``, ``modelzoo://`` and ``mmcls://`` names
    then load through :func:`safe_torch_load`, which also reads MMEngine's own
    training state (MMEngine 0.10 calls ``torch.load`` without
    ``weights_only``, which torch >= 2.6 turns into ``weights_only=True``: a
    resume fails on ``HistoryBuffer``). Other schemes (``s3://``, ``pavi://``)
    keep MMEngine's loaders. Called by :func:`register_all_modules` and our
    tools; safe to call many times.

    Outside the tested MMEngine range (:data:`mmscalekd.utils.versions.TESTED`)
    nothing is registered and a warning says so; ``MMSCALEKD_SAFE_LOADING=0``
    turns it off. MMEngine's stock loaders then apply.

    Returns:
        bool: Whether the loaders are registered.
    """
    global _gate_warned
    if os.environ.get(SAFE_LOADING_ENV, '1').strip().lower() in ('0', 'false', 'off', 'no'):
        return False
    from .versions import TESTED, installed_version, is_tested
    if not is_tested('mmengine'):
        if not _gate_warned:
            _gate_warned = True
            low, high = TESTED['mmengine']
            warnings.warn(
                f'mmscalekd: mmengine {installed_version("mmengine")} is outside the tested '
                f'range >={low},<{high}, so its stock checkpoint loaders stay in place (on '
                'torch >= 2.6 they cannot resume a training checkpoint); set '
                'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 only for files you trust.', stacklevel=2)
        return False
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader in _SCHEMES:
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
    return True
