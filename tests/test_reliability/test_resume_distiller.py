"""Exact resume after SIGKILL with a ScaleKD distiller: student, connectors, EMA, optimizer
(connector momentum included) and schedulers end bitwise equal (docs/reliability.md)."""
import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmscalekd.registry import MODELS
from mmscalekd.utils import safe_torch_load
from tests.test_reliability.test_resume import _assert_same_training_state, _env, _steps

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests/data/configs/tiny_resume_scalekd.py'


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> dict:
    """16 random 64x64 images in two classes and a random-init teacher checkpoint."""
    import cv2
    root = tmp_path_factory.mktemp('distill')
    rng = np.random.default_rng(0)
    for cls in ('cat', 'dog'):
        (root / 'images' / cls).mkdir(parents=True)
        for i in range(8):
            cv2.imwrite(str(root / 'images' / cls / f'{i}.png'),
                        rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(str(CFG)).model.teacher.model)
    torch.save({'state_dict': teacher.state_dict()}, root / 'teacher.pth')
    return dict(images=root / 'images', teacher=root / 'teacher.pth')


def _train(work_dir: Path, data: dict, *extra: str, teacher=None, **env: str
           ) -> subprocess.Popen:
    cmd = [sys.executable, 'tools/train.py', str(CFG), '--work-dir', str(work_dir), *extra,
           '--cfg-options', f'train_dataloader.dataset.data_root={data["images"]}',
           f'model.teacher.checkpoint={teacher or data["teacher"]}']
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _trainable_indices(prefix: str) -> list:
    """Optimizer-state indices of the trainable parameters under ``prefix`` (the default
    optimizer constructor passes ``model.parameters()`` in order, frozen teacher included)."""
    cfg = Config.fromfile(str(CFG))
    cfg.model.teacher.checkpoint = None
    cfg.model.teacher.allow_random_teacher = True  # only the parameter order is read
    model = MODELS.build(cfg.model)
    return [i for i, (name, p) in enumerate(model.named_parameters())
            if name.startswith(prefix) and p.requires_grad]


@pytest.mark.slow
def test_distiller_sigkill_mid_epoch_then_resume_is_bitwise_exact(tmp_path: Path,
                                                                  data: dict) -> None:
    """2 epochs x 4 batches, checkpoints at iterations 3 and 6; killed when iteration 8
    starts, resumed from iteration 6 (epoch 2, batch 3)."""
    full, killed = tmp_path / 'full', tmp_path / 'killed'
    procs = [_train(full, data), _train(killed, data, MMSCALEKD_KILL_AT='8')]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert procs[0].returncode == 0, outs[0][-3000:]
    assert procs[1].returncode == -signal.SIGKILL, outs[1][-3000:]
    assert (killed / 'last_checkpoint').read_text().strip().endswith('iter_6.pth')

    resumed = _train(killed, data, '--resume')
    out = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, out[-3000:]
    assert _steps(killed) == [[1, 2, 3, 4, 5, 6, 7], [7, 8]]  # no batch trained twice

    reference = safe_torch_load(full / 'iter_8.pth')
    result = safe_torch_load(killed / 'iter_8.pth')
    _assert_same_training_state(reference, result)  # every weight, EMA, momentum, scheduler

    # The connectors are in the comparison and really trained after the resume point.
    at_6 = safe_torch_load(killed / 'iter_6.pth')
    conn_keys = [k for k in result['state_dict'] if k.startswith('connectors.')]
    assert {k.split('.')[1] for k in conn_keys} == {'s3_spatial', 's3_freq', 's4_spatial',
                                                   's4_freq'}
    for key in ('connectors.s3_spatial.q.weight', 'connectors.s4_freq.proj.weight',
                'student.head.fc.weight'):
        assert not torch.equal(at_6['state_dict'][key], result['state_dict'][key]), key
    # Every connector parameter has a momentum buffer, equal in both runs.
    conn_idx = _trainable_indices('connectors.')
    assert len(conn_idx) > 20
    for i in conn_idx:
        assert torch.equal(reference['optimizer']['state'][i]['momentum_buffer'],
                           result['optimizer']['state'][i]['momentum_buffer'])
    # The frozen teacher is not in the checkpoints (it is reloaded from its own file at build);
    # they name it instead, and a resume with another teacher file fails clearly.
    for ckpt in (reference, result, at_6):
        assert not [k for k in ckpt['state_dict'] if k.startswith('teacher.')]
        assert not [k for k in ckpt.get('ema_state_dict', {}) if k.startswith('module.teacher.')]
    sha = hashlib.sha256(data['teacher'].read_bytes()).hexdigest()
    assert result['meta']['teacher']['sha256'] == sha
    assert result['meta']['teacher']['checkpoint'] == str(data['teacher'])
    assert all(isinstance(v, torch.Tensor) for v in result['state_dict'].values())

    other = tmp_path / 'other_teacher.pth'
    torch.manual_seed(1)
    torch.save({'state_dict': MODELS.build(Config.fromfile(str(CFG)).model.teacher.model)
                .state_dict()}, other)
    wrong = _train(killed, data, '--resume', teacher=other)
    out = wrong.communicate(timeout=240)[0]
    assert wrong.returncode == 1, out[-3000:]
    message = out.strip().splitlines()[-1]
    assert message.startswith('tools/train.py: error: Other teacher weights'), message
    assert str(data['teacher']) in message and str(other) in message
