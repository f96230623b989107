"""Exact resume after SIGKILL, and crash-safe checkpoint writing (SafeCheckpointHook)."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

from mmscalekd.utils import safe_torch_load

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests/data/configs/tiny_resume_classifier.py'


def _env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT), **extra)
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT',
                'MMSCALEKD_KILL_AT'):
        env.pop(key, None)
    env.update(extra)
    return env


def _train(work_dir: Path, data_root: Path, *extra: str, **env: str) -> subprocess.Popen:
    cmd = [sys.executable, 'tools/train.py', str(CFG), '--work-dir', str(work_dir), *extra,
           '--cfg-options', f'train_dataloader.dataset.data_root={data_root}']
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _steps(work_dir: Path) -> List[List[int]]:
    runs = []
    for path in sorted(work_dir.glob('*/vis_data/scalars.json')):
        records = [json.loads(line) for line in path.read_text().splitlines() if line]
        runs.append([r['step'] for r in records if 'loss' in r])
    return runs


def _assert_same_training_state(a: dict, b: dict) -> None:
    for part in ('state_dict', 'ema_state_dict'):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f'{part}.{key} differs'
    state_a, state_b = a['optimizer']['state'], b['optimizer']['state']
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key]['momentum_buffer'], state_b[key]['momentum_buffer'])
    assert a['param_schedulers'] == b['param_schedulers']
    assert a['meta']['iter'] == b['meta']['iter'] and a['meta']['epoch'] == b['meta']['epoch']


@pytest.fixture(scope='module')
def image_folder(tmp_path_factory) -> Path:
    import cv2
    root = tmp_path_factory.mktemp('images')
    rng = np.random.default_rng(0)
    for cls in ('cat', 'dog'):
        (root / cls).mkdir()
        for i in range(8):
            cv2.imwrite(str(root / cls / f'{i}.png'),
                        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return root


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bitwise_exact(tmp_path: Path,
                                                        image_folder: Path) -> None:
    """2 epochs x 4 batches, checkpoints at iterations 3 and 6 (mid-epoch); the run is killed
    with SIGKILL when iteration 8 starts and resumed from iteration 6 (epoch 2, batch 3)."""
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    procs = [_train(full, image_folder), _train(killed, image_folder, MMSCALEKD_KILL_AT='8')]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert procs[0].returncode == 0, outs[0][-3000:]
    assert procs[1].returncode == -signal.SIGKILL, outs[1][-3000:]
    assert (killed / 'last_checkpoint').read_text().strip().endswith('iter_6.pth')
    assert not (killed / 'iter_8.pth').exists()

    resumed = _train(killed, image_folder, '--resume')
    out = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, out[-3000:]
    assert _steps(killed) == [[1, 2, 3, 4, 5, 6, 7], [7, 8]]  # no batch trained twice

    reference = safe_torch_load(full / 'iter_8.pth')
    result = safe_torch_load(killed / 'iter_8.pth')
    _assert_same_training_state(reference, result)
    # The checkpoint really moved on from iteration 6 (the test would catch a no-op resume).
    at_6 = safe_torch_load(killed / 'iter_6.pth')
    assert not torch.equal(at_6['state_dict']['head.fc.weight'],
                           result['state_dict']['head.fc.weight'])
    # Our state is plain data: the RNG of the one process and the epoch length.
    assert result['exact_resume']['batches_per_epoch'] == 4
    assert len(result['exact_resume']['rng']) == 1


# ----------------------------------------------------------------- in-process, iter-based loop
class NoisyImages(Dataset):
    """16 images; each read adds torch and NumPy noise (stands in for random augmentation)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(16, 3, 16, 16, generator=g) * 255
        self.labels = torch.arange(16) % 4

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict:
        noise = torch.randn(3, 16, 16) * 10 + float(np.random.uniform(-5, 5))
        return dict(inputs=(self.images[i] + noise).clamp(0, 255).to(torch.uint8),
                    data_samples=DataSample().set_gt_label(int(self.labels[i])))


class CrashAt(Exception):
    pass


def _runner_cfg(work_dir: str, crash_at: int = 0, resume: bool = False) -> dict:
    custom_hooks = []
    if crash_at:
        custom_hooks.append(dict(type='mmscalekd.CrashAtIterHook', at=crash_at))
    return dict(
        model=dict(type='ImageClassifier',
                   data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=4,
                                          mean=[127.5] * 3, std=[127.5] * 3),
                   backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                                 out_indices=(3, ), drop_path_rate=0.3),
                   neck=dict(type='GlobalAveragePooling'),
                   head=dict(type='LinearClsHead', num_classes=4, in_channels=64,
                             loss=dict(type='CrossEntropyLoss'))),
        work_dir=work_dir,
        train_dataloader=dict(dataset=NoisyImages(), batch_size=4, num_workers=0,
                              sampler=dict(type='ResumableSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(type='ResumableIterBasedTrainLoop', max_iters=10),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        param_scheduler=[dict(type='MultiStepLR', by_epoch=False, milestones=[5], gamma=0.1)],
        default_hooks=dict(checkpoint=dict(type='SafeCheckpointHook', interval=4, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=custom_hooks + [dict(type='EMAHook', momentum=0.2),
                                     dict(type='ExactResumeHook')],
        randomness=dict(seed=0), default_scope='mmscalekd', resume=resume,
        env_cfg=dict(dist_cfg=dict(backend='gloo')), log_level='ERROR')


def _crash_hook():
    from mmengine.hooks import Hook

    from mmscalekd.registry import HOOKS

    @HOOKS.register_module(force=True)
    class CrashAtIterHook(Hook):
        def __init__(self, at: int) -> None:
            self.at = at

        def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
            if runner.iter + 1 == self.at:
                raise CrashAt(self.at)


def test_iter_loop_crash_and_resume_at_epoch_boundary_is_exact(tmp_path: Path) -> None:
    """4 batches per epoch, checkpoints at 4 and 8; a crash in iteration 7 resumes from 4,
    the first batch of the second epoch (restore RNG *before* the epoch's iterator)."""
    _crash_hook()
    Runner(**_runner_cfg(str(tmp_path / 'full'))).train()
    with pytest.raises(CrashAt):
        Runner(**_runner_cfg(str(tmp_path / 'crash'), crash_at=7)).train()
    assert (tmp_path / 'crash' / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')
    Runner(**_runner_cfg(str(tmp_path / 'crash'), resume=True)).train()
    _assert_same_training_state(safe_torch_load(tmp_path / 'full' / 'iter_8.pth'),
                                safe_torch_load(tmp_path / 'crash' / 'iter_8.pth'))


# ----------------------------------------------------------------- crash while saving
def test_failure_while_saving_leaves_previous_checkpoint_resumable(tmp_path: Path,
                                                                   monkeypatch) -> None:
    work_dir = tmp_path / 'work'
    cfg = _runner_cfg(str(work_dir))
    cfg['train_cfg'] = dict(type='ResumableIterBasedTrainLoop', max_iters=4)
    cfg['custom_hooks'] = []  # EMAHook builds its copy in before_run, which load_or_resume skips
    # max_keep_ckpts=1: MMEngine alone deletes iter_2.pth *before* writing iter_4.pth.
    cfg['default_hooks']['checkpoint'] = dict(type='SafeCheckpointHook', interval=2,
                                              by_epoch=False, max_keep_ckpts=1)
    real_save, calls = torch.save, []

    def save_then_die(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) < 2:
            return real_save(obj, f, *args, **kwargs)
        import io
        buf = io.BytesIO()
        real_save(obj, buf)
        f.write(buf.getvalue()[:len(buf.getvalue()) // 2])  # half a checkpoint, then ...
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch, 'save', save_then_die)
    with pytest.raises(OSError, match='No space left'):
        Runner(**cfg).train()
    monkeypatch.setattr(torch, 'save', real_save)

    assert len(calls) == 2
    files = sorted(p.name for p in work_dir.iterdir() if p.is_file() and p.suffix != '.py')
    assert files == ['iter_2.pth', 'last_checkpoint']  # no iter_4.pth, no temporary file
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / 'iter_2.pth')
    assert safe_torch_load(work_dir / 'iter_2.pth')['meta']['iter'] == 2
    resumed = Runner(**dict(cfg, resume=True))
    resumed.load_or_resume()
    assert resumed.iter == 2
