"""Compatibility fixes that let the pinned OpenMMLab stack run on current torch.

Applied once, on ``import mmscalekd`` (and therefore in every torchrun worker,
because our tools import the package before anything else). Each fix names the
upstream behaviour it works around and when it can go; see
``../shared/spec/deps.md`` W1-W3 for how they were found.

* **W1 torchvision beside CPU torch.** The PyPI torchvision wheel is a CUDA build;
  beside the CPU torch its C++ ops do not load, and ``import torchvision`` dies in
  ``torchvision/_meta_registrations.py`` because ``register_fake`` is not guarded
  by ``_has_ops()``. mmpretrain imports torchvision at import time. We let
  ``register_fake`` skip *only* ``torchvision::*`` operators that do not exist,
  and only while torchvision itself is importing. torchvision's Python parts then
  work; its C++ ops (nms, roi_align) raise as before, and mmcv's compiled ops
  replace them. Remove when torchvision guards its fake registrations.
* **W2 ``torch.load`` defaults to ``weights_only=True`` (torch >= 2.6).** MMEngine
  0.10 calls ``torch.load`` without the argument, so resuming a Runner checkpoint
  fails on ``HistoryBuffer`` and numpy objects. We do *not* switch the safety off:
  the local and HTTP checkpoint loaders go through
  :func:`mmscalekd.utils.checkpoint.load_checkpoint_file`, which loads weights with
  ``weights_only=True`` and admits MMEngine's own training state (message hub,
  numpy scalars) through a closed allow-list that can construct nothing else.
* **W3 distributed init without CUDA.** MMEngine 0.10's ``_init_dist_pytorch``
  always calls ``torch.cuda.set_device``; on a CPU build it raises. Without CUDA we
  initialise the process group with gloo and skip the device call. The Runner's
  default DDP wrapper passes ``device_ids=[local_rank]``, which DDP refuses for CPU
  modules; :func:`mmscalekd.utils.setup_env.adapt_cfg_to_device` sets
  ``device_ids=None`` there.
* **W4 checkpoints are written in place.** MMEngine 0.10 writes a checkpoint by
  opening the final path and writing into it, and ``CheckpointHook`` deletes the
  oldest checkpoint *before* saving the new one and rewrites ``last_checkpoint``
  in place. A crash while saving can leave a truncated ``.pth`` (or none at all)
  that ``--resume`` then picks. Local checkpoints are now written to a temporary
  file in the same folder, flushed to disk and renamed over the final name
  (``os.replace``, atomic on POSIX); ``last_checkpoint`` is updated the same way
  and only after the checkpoint file is complete, and outdated checkpoints are
  removed only after that. See :mod:`mmscalekd.utils.atomic_checkpoint`.
  Remove when MMEngine writes checkpoints atomically.
* **W2b MMEngine's other checkpoint schemes.** ``open-mmlab://``, ``mmcls://``,
  ``torchvision://`` and ``modelzoo://`` resolve to URLs and load through
  MMEngine's ``load_from_http`` (a plain ``torch.load``); it is pointed at our
  safe URL loader too.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Iterator

import torch

_APPLIED = False


@contextlib.contextmanager
def _tolerant_torchvision_fake_registrations() -> Iterator[None]:
    """W1: let ``torch.library.register_fake`` skip missing torchvision ops."""
    original = torch.library.register_fake

    def _skip_missing(call: Callable[[], Any], fallback: Any) -> Any:
        try:
            return call()
        except RuntimeError as err:  # the op was never registered (no C++ ops)
            if 'does not exist' not in str(err):
                raise
            return fallback

    def register_fake(op: Any, *args: Any, **kwargs: Any) -> Any:
        if not (isinstance(op, str) and op.startswith('torchvision::')):
            return original(op, *args, **kwargs)
        if args or kwargs.get('func') is not None:
            return _skip_missing(lambda: original(op, *args, **kwargs), None)
        decorator = _skip_missing(lambda: original(op, *args, **kwargs), None)

        def register(fn: Callable) -> Callable:
            if decorator is not None:
                _skip_missing(lambda: decorator(fn), None)
            return fn

        return register

    torch.library.register_fake = register_fake
    try:
        yield
    finally:
        torch.library.register_fake = original


def _patch_torchvision_import() -> None:
    if 'torchvision' in sys.modules:
        return
    try:
        import torchvision  # noqa: F401
        return
    except RuntimeError as err:
        if 'torchvision::' not in str(err):
            raise
    # The failed import left half-initialised modules behind: drop them and retry.
    for name in list(sys.modules):
        if name == 'torchvision' or name.startswith('torchvision.'):
            del sys.modules[name]
    with _tolerant_torchvision_fake_registrations():
        import torchvision  # noqa: F401


def _patch_checkpoint_loaders() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader

    from .checkpoint import load_checkpoint_file, load_url_checkpoint

    CheckpointLoader.register_scheme(prefixes='', force=True)(load_checkpoint_file)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), force=True)(load_url_checkpoint)
    # W2b: the open-mmlab:// / torchvision:// / mmcls:// loaders call this global.
    import mmengine.runner.checkpoint as mm_checkpoint

    def load_from_http(filename: str, map_location: Any = None, model_dir: Any = None,
                       progress: bool = False) -> Any:
        return load_url_checkpoint(filename, map_location=map_location, model_dir=model_dir)

    mm_checkpoint.load_from_http = load_from_http


def _patch_atomic_checkpoints() -> None:
    from .atomic_checkpoint import apply_atomic_checkpoints
    apply_atomic_checkpoints()


def _patch_cpu_distributed() -> None:
    import mmengine.dist.utils as dist_utils

    original: Callable[..., None] = dist_utils._init_dist_pytorch
    if getattr(original, '_mmscalekd_patched', False):
        return

    def _init_dist_pytorch(backend: str = 'nccl', init_backend: str = 'torch',
                           **kwargs: Any) -> None:
        if torch.cuda.is_available():
            return original(backend, init_backend=init_backend, **kwargs)
        if backend != 'gloo':
            # nccl needs CUDA; gloo is the only backend that works on CPU.
            backend = 'gloo'
        import torch.distributed as torch_dist
        torch_dist.init_process_group(
            backend=backend,
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            **kwargs)

    _init_dist_pytorch._mmscalekd_patched = True  # type: ignore[attr-defined]
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def apply() -> None:
    """Apply every fix once; safe to call many times."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_torchvision_import()
    _patch_checkpoint_loaders()
    _patch_cpu_distributed()
    _patch_atomic_checkpoints()
    _APPLIED = True
