"""Stop training at the first NaN/inf loss, naming the loss term and the iteration."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from mmengine.hooks import Hook

from mmscalekd.registry import HOOKS


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise ``FloatingPointError`` when a logged loss term is NaN or infinite.

    Runs after each training iteration, before :class:`CheckpointHook`
    (priority ``ABOVE_NORMAL``), so no checkpoint is written from the broken
    step and the latest checkpoint stays resumable. The message names every
    non-finite term (e.g. ``distill.loss_s3_freq``), the iteration and the
    learning rate, which usually points at the cause (a too-large LR, a
    teacher/student normalisation mismatch, fp16 overflow without loss
    scaling).

    Args:
        check_all (bool): Check every logged value, not only the keys that
            contain ``'loss'``. Defaults to False.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, check_all: bool = False) -> None:
        if not isinstance(check_all, bool):
            raise TypeError(f'check_all must be a bool, got {check_all!r}')
        self.check_all = check_all

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        bad = []
        for key, value in outputs.items():
            if not (self.check_all or 'loss' in key):
                continue
            if isinstance(value, torch.Tensor):
                finite = bool(torch.isfinite(value.detach()).all())
                shown = value.detach().float().mean().item() if value.numel() else value
            elif isinstance(value, (int, float)):
                finite, shown = math.isfinite(value), value
            else:
                continue
            if not finite:
                bad.append(f'{key}={shown}')
        if bad:
            try:
                lr = runner.optim_wrapper.get_lr()
            except Exception:  # an optimizer wrapper without get_lr
                lr = 'unknown'
            raise FloatingPointError(
                f'Non-finite loss at iteration {runner.iter + 1} (epoch {runner.epoch + 1}): '
                f'{", ".join(bad)}; every loss term must be finite. Learning rate: {lr}. '
                'Resume from the last checkpoint with a lower learning rate, check the '
                "teacher's mean/std and input size, or enable loss scaling for fp16.")
