"""Check ``init_cfg=dict(type='Pretrained', prefix=...)`` files before the weights are loaded."""
from __future__ import annotations

import os.path as osp
from collections import Counter
from typing import Any, Iterator, List, Tuple

from mmengine.hooks import Hook

from mmscalekd.registry import HOOKS

EXTRACT = 'python tools/model_converters/extract_student.py'


def _prefix_counts(keys: List[str], depth: int = 1) -> str:
    counts = Counter('.'.join(key.split('.')[:depth]) for key in keys)
    return ', '.join(f'{name}.* {n}' for name, n in sorted(counts.items())) or 'nothing'


def _pretrained_cfgs(model: Any) -> Iterator[Tuple[str, dict]]:
    for name, module in model.named_modules():
        init_cfgs = getattr(module, 'init_cfg', None)
        if isinstance(init_cfgs, dict):
            init_cfgs = [init_cfgs]
        for cfg in init_cfgs or []:
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained' and cfg.get('prefix'):
                yield name or 'model', cfg


def check_pretrained_file(checkpoint: str, prefix: str, where: str = 'model.backbone') -> None:
    """Refuse a ``Pretrained`` checkpoint that holds nothing under ``prefix``, saying why.

    MMEngine's ``Pretrained`` init keeps the weights whose names start with ``prefix``
    and fails with ``AssertionError: backbone. is not in the pretrained model`` when there
    are none. The usual cause is a distiller checkpoint, whose student weights are named
    ``student.backbone.*``: this check says so and gives the ``extract_student.py`` command.

    Args:
        checkpoint (str): Local path of the file (``~`` expanded).
        prefix (str): The ``prefix`` of the init config, e.g. ``'backbone.'``.
        where (str): The module whose ``init_cfg`` it is, for messages.

    Raises:
        FileNotFoundError: The file does not exist (with the command that makes it).
        ValueError: No weight starts with ``prefix``.
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    path = osp.expanduser(checkpoint)
    make = (f'{EXTRACT} <distillation work_dir>/epoch_N.pth {checkpoint} --backbone-only '
            '(docs/downstream.md, step 2)')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{where}.init_cfg: checkpoint {checkpoint!r} does not exist. Make it from your '
            f'distillation checkpoint with `{make}`, or point {where}.init_cfg.checkpoint at '
            'an existing file (e.g. --cfg-options '
            f'{where}.init_cfg.checkpoint=/path/to/student_backbone.pth).')
    loaded = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    state = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else {}
    keys = [k[len('module.'):] if k.startswith('module.') else k for k in state]
    if any(k.startswith(prefix) for k in keys):
        return
    if any(k.startswith('student.' + prefix) for k in keys):
        raise ValueError(
            f'{where}.init_cfg: {checkpoint!r} is a distiller checkpoint (its weights are '
            f'{_prefix_counts(keys)}; the student\'s are named student.{prefix}*), so '
            f'prefix={prefix!r} finds nothing. Extract the student backbone first: '
            f'`{EXTRACT} {checkpoint} student_backbone.pth --backbone-only`, then set '
            f'{where}.init_cfg.checkpoint to student_backbone.pth.')
    raise ValueError(
        f'{where}.init_cfg: {checkpoint!r} has no weights named {prefix}* (it has '
        f'{_prefix_counts(keys)}). For a student of a distillation run, make the file with '
        f'`{make}`; for another file, set {where}.init_cfg.prefix to the prefix its backbone '
        'weights carry.')


@HOOKS.register_module()
class PretrainedCheckHook(Hook):
    """Before training initialises the weights, check every prefixed ``Pretrained`` file.

    For downstream (MMDetection / MMSegmentation) configs whose backbone starts from a
    distilled student: a missing file or a distiller checkpoint that was not run through
    ``tools/model_converters/extract_student.py`` is refused with the command that fixes it,
    instead of ``AssertionError: backbone. is not in the pretrained model``. Runs in
    ``before_run`` (MMEngine's ``Runner.train`` calls it before ``_init_model_weights``) and
    only for training. Remote files (``http://``, ``s3://``, ...) are left to the loader.
    Used from another scope as ``dict(type='PretrainedCheckHook', _scope_='mmscalekd')``.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner: Any) -> None:
        from mmengine.model import is_model_wrapper
        from mmengine.runner import BaseLoop
        if not isinstance(getattr(runner, '_train_loop', None), BaseLoop):
            return  # val / test: the weights come from the checkpoint under test
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for name, cfg in _pretrained_cfgs(model):
            checkpoint = str(cfg.get('checkpoint'))
            if '://' in checkpoint and not checkpoint.startswith('file://'):
                continue
            check_pretrained_file(checkpoint.replace('file://', '', 1), cfg['prefix'],
                                  f'model.{name}' if name != 'model' else 'model')
