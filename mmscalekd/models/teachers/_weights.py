"""Teacher weights: load a checkpoint once, with messages that say what to do."""
from __future__ import annotations

import os.path as osp
from typing import Dict, Optional

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor

REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'open-mmlab://', 'torchvision://',
                   'mmcls://', 'openmmlab://', 'modelzoo://', 'pavi://')
_LOCAL_HINT = ('--cfg-options model.teacher.checkpoint=/path/to/file.pth')


class TeacherDownloadError(RuntimeError):
    """The teacher weights could not be fetched (no network, wrong URL, hub unreachable)."""


def has_pretrained_init_cfg(model: nn.Module) -> Optional[str]:
    """``"init_cfg Pretrained <checkpoint>"`` when ``model`` or a submodule loads weights
    through an MMEngine ``init_cfg`` of type ``'Pretrained'``, else None."""
    for module in model.modules():
        if not isinstance(module, BaseModule):
            continue
        cfgs = module.init_cfg
        for cfg in (cfgs if isinstance(cfgs, list) else [cfgs]):
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained' and cfg.get(
                    'checkpoint'):
                return f"init_cfg Pretrained {cfg['checkpoint']}"
    return None


def _ignorable_key(key: str) -> bool:
    # Buffers that some checkpoints carry and others rebuild on the fly.
    return key.endswith(('attn_mask', 'relative_position_index', 'num_batches_tracked'))


def _read(checkpoint: str, label: str) -> object:
    if checkpoint.startswith(REMOTE_PREFIXES):
        try:
            return CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        except OSError as e:  # urllib's URLError, socket errors, refused connections
            reason = getattr(e, 'reason', None) or e
            raise TeacherDownloadError(
                f'{label}: cannot download the teacher checkpoint {checkpoint!r} ({reason}); '
                'no network seems reachable from here, or the URL is wrong. Download the file '
                f'where a network is available and pass the local copy with {_LOCAL_HINT}.'
            ) from e
    path = osp.expanduser(checkpoint)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{label}: teacher checkpoint {checkpoint!r} does not exist. Give a local .pth file '
            'or an http(s):// URL.')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device='cpu')
    return CheckpointLoader.load_checkpoint(path, map_location='cpu')


def load_teacher_checkpoint(model: nn.Module, checkpoint: str, label: str) -> None:
    """Load ``checkpoint`` into ``model`` (every key must match, up to rebuilt buffers).

    Args:
        model (nn.Module): The teacher network.
        checkpoint (str): Local ``.pth``/``.safetensors`` file or URL; a ``state_dict``,
            ``model`` or ``module`` entry is unwrapped, a ``module.`` prefix stripped.
        label (str): The teacher's name in messages.

    Raises:
        FileNotFoundError: A local file that does not exist.
        TeacherDownloadError: A URL that cannot be fetched.
        RuntimeError: Keys or shapes that do not match the model.
    """
    raw = _read(checkpoint, label)
    state = raw
    if isinstance(raw, dict):
        for key in ('state_dict', 'model', 'module'):
            if key in raw and isinstance(raw[key], dict):
                state = raw[key]
                break
    if not isinstance(state, dict):
        raise TypeError(f'{label}: checkpoint {checkpoint!r} holds no state dict '
                        f'(found {type(state).__name__})')
    state: Dict[str, Tensor] = {(k[len('module.'):] if k.startswith('module.') else k): v
                                for k, v in state.items()}
    own = model.state_dict()
    wrong_shape = [f'{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}'
                   for k, v in state.items()
                   if k in own and hasattr(v, 'shape') and v.shape != own[k].shape]
    result = None
    if not wrong_shape:
        result = model.load_state_dict(state, strict=False)
    missing = [k for k in (result.missing_keys if result else own.keys() - state.keys())
               if not _ignorable_key(k)]
    unexpected = [k for k in (result.unexpected_keys if result else state.keys() - own.keys())
                  if not _ignorable_key(k)]
    if missing or unexpected or wrong_shape:
        raise RuntimeError(
            f'{label}: checkpoint {checkpoint!r} does not match the teacher model '
            f'({type(model).__name__}); is it a checkpoint of another '
            f'architecture? {len(missing)} missing key(s), e.g. {sorted(missing)[:5]}; '
            f'{len(unexpected)} unexpected key(s), e.g. {sorted(unexpected)[:5]}; '
            f'{len(wrong_shape)} shape mismatch(es) (checkpoint vs model), e.g. '
            f'{wrong_shape[:3]}.')
    print_log(f'{label}: loaded teacher weights from {checkpoint}', logger='current')
