"""SafeCheckpointHook: stale temporary files removed at start, rotation keeps the newest
checkpoint with finite weights, and the stock CheckpointHook as the control that loses it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmscalekd.engine.hooks.safe_checkpoint_hook import (
    SafeCheckpointHook,
    remove_stale_temporaries,
    weights_are_finite,
)
from mmscalekd.registry import HOOKS
from mmscalekd.utils import safe_torch_load
from tests.test_reliability.test_resume import NoisyImages


@HOOKS.register_module(force=True)
class SetWeightsAtIterHook(Hook):
    """Fill every parameter and float buffer with ``value`` at the end of iteration ``at``
    (before the save)."""

    priority = 'NORMAL'  # after the optimizer step, before the checkpoint hook (VERY_LOW)

    def __init__(self, at: int, value: float) -> None:
        self.at, self.value = at, value

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at:
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            with torch.no_grad():
                for t in [*model.parameters(), *model.buffers()]:
                    if t.is_floating_point():
                        t.fill_(self.value)


def _cfg(work_dir: Path, max_iters: int, hook: str = 'SafeCheckpointHook', resume=False,
         custom_hooks=()) -> dict:
    return dict(
        model=dict(type='ImageClassifier',
                   data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=4,
                                          mean=[127.5] * 3, std=[127.5] * 3),
                   backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                                 out_indices=(3, )),
                   neck=dict(type='GlobalAveragePooling'),
                   head=dict(type='LinearClsHead', num_classes=4, in_channels=64,
                             loss=dict(type='CrossEntropyLoss'))),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=NoisyImages(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type=hook, interval=2, by_epoch=False,
                                           max_keep_ckpts=2),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=list(custom_hooks), randomness=dict(seed=0), default_scope='mmscalekd',
        resume=resume, env_cfg=dict(dist_cfg=dict(backend='gloo')), log_level='ERROR')


def _checkpoints(work_dir: Path) -> list:
    return sorted((p.name for p in work_dir.glob('*.pth')), key=lambda n: int(n[5:-4]))


def test_rotation_keeps_the_newest_finite_checkpoint_and_drops_it_once_a_newer_one_exists(
        tmp_path: Path) -> None:
    work = tmp_path / 'work'
    nan_at_5 = [dict(type='SetWeightsAtIterHook', at=5, value=float('nan'))]
    Runner(**_cfg(work, max_iters=8, custom_hooks=nan_at_5)).train()
    # Saved at 2, 4 (finite), 6, 8 (NaN); max_keep_ckpts=2 keeps 6 and 8, and 4 besides.
    assert _checkpoints(work) == ['iter_4.pth', 'iter_6.pth', 'iter_8.pth']
    last = safe_torch_load(work / 'iter_8.pth')
    assert last['meta']['finite_weights'] is False
    assert safe_torch_load(work / 'iter_4.pth')['meta']['finite_weights'] is True
    info = last['message_hub']['runtime_info']
    assert info['last_finite_ckpt'] == str(work / 'iter_4.pth')
    assert info['retained_finite_ckpt'] == str(work / 'iter_4.pth')
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_8.pth')

    # Resumed (from the NaN checkpoint), the weights are made finite again at iteration 10:
    # a newer finite checkpoint exists, so the retained one goes with normal rotation.
    healed = [dict(type='SetWeightsAtIterHook', at=10, value=0.01)]
    Runner(**_cfg(work, max_iters=10, resume=True, custom_hooks=healed)).train()
    assert _checkpoints(work) == ['iter_8.pth', 'iter_10.pth']
    info = safe_torch_load(work / 'iter_10.pth')['message_hub']['runtime_info']
    assert info['last_finite_ckpt'] == str(work / 'iter_10.pth')
    assert info['retained_finite_ckpt'] is None


def test_control_mmengine_checkpoint_hook_rotates_the_finite_checkpoints_away(
        tmp_path: Path) -> None:
    work = tmp_path / 'stock'
    nan_at_5 = [dict(type='SetWeightsAtIterHook', at=5, value=float('nan'))]
    Runner(**_cfg(work, max_iters=8, hook='CheckpointHook', custom_hooks=nan_at_5)).train()
    assert _checkpoints(work) == ['iter_6.pth', 'iter_8.pth']  # both NaN: nothing to resume


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_are_removed_at_start_live_ones_kept(tmp_path: Path) -> None:
    work = tmp_path / 'work'
    work.mkdir()
    dead = _dead_pid()
    stale = [work / f'.iter_6.pth.tmp-{dead}', work / f'.last_checkpoint.tmp-{dead}']
    for path in stale:
        path.write_bytes(b'\0' * 1024)
    alive = work / f'.iter_8.pth.tmp-{os.getppid()}'  # a running process may still write it
    alive.write_bytes(b'partial')
    others = [work / 'iter_4.pth', work / '.hidden', work / 'notes.tmp-1']
    for path in others:
        path.write_bytes(b'keep')
    Runner(**_cfg(work, max_iters=2)).train()
    assert not any(path.exists() for path in stale)
    assert alive.exists() and all(path.exists() for path in others)
    assert not list(work.glob('.iter_2.pth.tmp-*'))  # the run's own save left none
    assert remove_stale_temporaries(str(tmp_path / 'missing')) == []


def test_weights_are_finite() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert weights_are_finite(model)
    model[1].running_var[0] = float('inf')  # buffers count too
    assert not weights_are_finite(model)


def test_outside_the_tested_mmengine_range_it_warns_and_behaves_like_checkpoint_hook(
        monkeypatch) -> None:
    from mmscalekd.utils import versions
    real = versions.installed_version
    monkeypatch.setattr(versions, 'installed_version',
                        lambda name: '1.0.0' if name == 'mmengine' else real(name))
    with pytest.warns(UserWarning, match='outside the tested range'):
        hook = SafeCheckpointHook(interval=1)
    assert hook._safe is False
