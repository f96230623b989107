"""Check a ``--resume`` checkpoint against the model and optimizer it is to continue.

MMEngine 0.10's ``Runner.resume`` loads the weights non-strictly and then reads
``checkpoint['meta']``, ``checkpoint['message_hub']`` and the optimizer state, so a file of
the wrong kind fails late and obscurely: a student checkpoint made by
``extract_student.py`` (weights only) with ``KeyError: 'message_hub'``, a bare state dict
with ``KeyError: 'meta'``, another distiller's training checkpoint with an optimizer
``ValueError`` about parameter groups, after its matching weights were already copied in.
:func:`check_resume_checkpoint` says what the file is and what to do instead, before the
Runner touches the model.

Teacher weights (``teacher.*``) are left out of the comparison on both sides: a training
checkpoint may or may not carry the frozen teacher, which is loaded from its own checkpoint.
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import torch

__all__ = ['ResumeCheckpointError', 'check_resume_checkpoint', 'check_runner_resume',
           'resume_checkpoint_path', 'describe_checkpoint']

_TRAINING_STATE = ('meta', 'message_hub')
_IGNORED = ('teacher.', )


class ResumeCheckpointError(ValueError):
    """The checkpoint cannot continue this run; the message says why and what to do."""


def resume_checkpoint_path(cfg: Any, work_dir: str) -> Optional[str]:
    """The file the Runner resumes from (as ``Runner.load_or_resume`` decides), if any.

    Args:
        cfg (Config): The merged config (``resume`` and ``load_from``).
        work_dir (str): The run's work dir, where ``last_checkpoint`` points to the latest.
    """
    if not cfg.get('resume'):
        return None
    if cfg.get('load_from'):
        return cfg.load_from
    from mmengine.runner import find_latest_checkpoint
    return find_latest_checkpoint(work_dir)


def _weights(checkpoint: dict) -> Dict[str, Any]:
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict):
        return {}
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith(_IGNORED)}


def describe_checkpoint(checkpoint: Any) -> str:
    """A short phrase saying what kind of file a loaded checkpoint is."""
    if not isinstance(checkpoint, dict):
        return f'a {type(checkpoint).__name__}, not a checkpoint dict'
    keys = list(checkpoint.get('state_dict', checkpoint))
    has_student = any(str(k).startswith('student.') for k in keys)
    if 'state_dict' not in checkpoint:
        return 'a bare state dict (weights only)'
    if all(k in checkpoint for k in _TRAINING_STATE):
        return 'a training checkpoint' + (' of a distiller' if has_student else '')
    if has_student:
        return 'distiller weights without training state'
    converter = (checkpoint.get('meta') or {}).get('converter')
    made_by = f', made by {converter}' if converter else ''
    return f'a weights-only checkpoint (student / classifier{made_by})'


def _examples(names: List[str], n: int = 3) -> str:
    return ', '.join(names[:n]) + (', ...' if len(names) > n else '')


def _group_sizes(groups: List[dict]) -> List[int]:
    return [len(group.get('params', [])) for group in groups]


def _optimizer_mismatch(saved: Any, optimizer: Any) -> Optional[Tuple[List[int], List[int]]]:
    if not isinstance(saved, dict) or 'param_groups' not in saved:
        return None  # OptimWrapperDict or another layout: left to MMEngine
    have = _group_sizes(saved['param_groups'])
    want = _group_sizes(optimizer.param_groups)
    return None if have == want else (have, want)


def check_resume_checkpoint(checkpoint: Any, filename: str, model: torch.nn.Module,
                            optimizer: Optional[torch.optim.Optimizer] = None) -> None:
    """Refuse a checkpoint that cannot continue the run of ``model`` (and ``optimizer``).

    Args:
        checkpoint (Any): The loaded file.
        filename (str): Its name, for messages.
        model (nn.Module): The model to resume (unwrapped).
        optimizer (torch.optim.Optimizer, optional): Its optimizer, built; the saved
            optimizer state must have the same parameter groups (count and sizes).

    Raises:
        ResumeCheckpointError: The file holds no training state, weights of another model,
            or an optimizer state of another parameter grouping.
    """
    kind = describe_checkpoint(checkpoint)
    is_distiller = any(k.startswith('student.') for k in model.state_dict())
    load_from = (f'drop --resume and start a new run from its weights with --cfg-options '
                 f'load_from={filename} (weights only, matched by name, non-strict)')
    if is_distiller:
        student_init = f"dict(type='Pretrained',checkpoint='{filename}')"
        load_from += (', or, for a student checkpoint, with --cfg-options '
                      f'"model.student.init_cfg={student_init}"')
    own = ('--resume continues a run from a checkpoint its CheckpointHook wrote (work_dir/'
           'iter_N.pth or epoch_N.pth; --resume alone picks the latest)')
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint or not all(
            k in checkpoint for k in _TRAINING_STATE):
        missing = ([k for k in ('state_dict', ) + _TRAINING_STATE if k not in checkpoint]
                   if isinstance(checkpoint, dict) else ['everything'])
        raise ResumeCheckpointError(
            f'--resume {filename!r} is {kind}: it lacks the training state a resume needs '
            f'({", ".join(missing)}). {own}. To use these weights, {load_from}.')

    saved = _weights(checkpoint)
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(_IGNORED)}
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    misshapen = [f'{k}: {tuple(saved[k].shape)} vs {tuple(v.shape)}' for k, v in expected.items()
                 if k in saved and hasattr(saved[k], 'shape') and saved[k].shape != v.shape]
    if missing or unexpected or misshapen:
        parts = []
        if missing:
            parts.append(f'{len(missing)} weight(s) of this model are not in it '
                         f'(e.g. {_examples(missing)})')
        if unexpected:
            parts.append(f'{len(unexpected)} of its weights are not in this model '
                         f'(e.g. {_examples(unexpected)})')
        if misshapen:
            parts.append(f'{len(misshapen)} have another shape (checkpoint vs model, e.g. '
                         f'{_examples(misshapen, 2)})')
        raise ResumeCheckpointError(
            f'--resume {filename!r} is {kind} whose weights do not match this model: '
            f'{"; ".join(parts)}. '
            f'{own}: resume from this config\'s own work dir, or {load_from}.')

    if optimizer is not None and 'optimizer' in checkpoint:
        mismatch = _optimizer_mismatch(checkpoint['optimizer'], optimizer)
        if mismatch is not None:
            have, want = mismatch
            raise ResumeCheckpointError(
                f'--resume {filename!r}: its optimizer state has {len(have)} parameter '
                f'group(s) of {have} parameters, but this config\'s optimizer has {len(want)} '
                f'of {want} (optim_wrapper.paramwise_cfg or the trainable parameters differ '
                'from the run that wrote it). Resume with the optimizer settings of that run, '
                f'or {load_from}.')


def _load_for_check(filename: str) -> Any:
    """The checkpoint, memory-mapped where possible (only its metadata is read).

    A local zip checkpoint is opened with ``torch.load(mmap=True)`` through the same
    weights-only allow-list as :func:`mmscalekd.utils.safe_torch_load`, so checking costs
    neither the time nor the memory of reading the tensors. Anything else (a URL, a legacy
    file, a corrupt or unsafe one) goes through MMEngine's ``CheckpointLoader`` and its
    registered schemes, which give the usual messages.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    if '://' not in filename and osp.isfile(filename):
        try:
            from .checkpoint import _allowed_globals
            with torch.serialization.safe_globals(_allowed_globals()):
                return torch.load(filename, map_location='cpu', mmap=True, weights_only=True)
        except Exception:  # noqa: BLE001  (the loader below reports what is wrong)
            pass
    return CheckpointLoader.load_checkpoint(filename, map_location='cpu')


def check_runner_resume(runner: Any, cfg: Any) -> Optional[str]:
    """:func:`check_resume_checkpoint` for the file a built Runner is about to resume from.

    Builds the Runner's optimizer wrapper (``Runner.train`` would do it next and keeps the
    built one) to compare parameter groups. Returns the file checked, or None when nothing
    is resumed (``resume`` off, or no checkpoint yet: a fresh start).
    """
    from mmengine.model import is_model_wrapper
    filename = resume_checkpoint_path(cfg, runner.work_dir)
    if filename is None or osp.isdir(filename):  # DeepSpeed-style folders: left to MMEngine
        return None
    if not cfg.get('load_from') and '://' not in filename and not osp.isfile(filename):
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        raise ResumeCheckpointError(
            f'--resume: {pointer} names {filename!r}, which does not exist (moved or deleted?). '
            'Pass the checkpoint to continue from (--resume CKPT), or delete last_checkpoint '
            'to start the run afresh.')
    checkpoint = _load_for_check(filename)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    optimizer = None
    if isinstance(checkpoint, dict) and 'optimizer' in checkpoint \
            and runner.optim_wrapper is not None:
        runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
    check_resume_checkpoint(checkpoint, filename, model, optimizer)
    return filename
