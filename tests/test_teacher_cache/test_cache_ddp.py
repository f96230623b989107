"""The cache writer and cached training under DDP (2 gloo processes on CPU).

* ``torchrun`` with 2 writer processes writes the same cache as one process (same records;
  shards split between the ranks).
* Cached training in 2 processes with batch B ends with the same weights as 1 process with batch
  2B: the student uses GroupNorm, ``EpochTaggedSampler`` gives rank r the samples perm[r::2] of
  each step, and every view (random crop, flip, Mixup / CutMix partner) is a function of the
  sample and epoch, not of the process that loads it.
"""
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmscalekd.teacher_cache import load_manifest
from mmscalekd.utils import safe_torch_load
from tests.test_teacher_cache.cache_helpers import CFG, ROOT, make_data, options


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    return env


def _torchrun(n: int) -> list:
    return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(n),
            '--master_port', str(_free_port())]


def _opts(data: dict, cache: Path, *extra: str) -> list:
    return ['--cfg-options', *[f'{k}={v}' for k, v in options(data, cache).items()], *extra]


def _run(cmds: list) -> None:
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for cmd in cmds]
    for proc in procs:
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, out[-4000:]


@pytest.mark.slow
def test_ddp_writer_and_ddp_training_equal_one_process(tmp_path: Path) -> None:
    data = make_data(tmp_path)
    one, two = tmp_path / 'cache1', tmp_path / 'cache2'
    writer = ['tools/write_teacher_cache.py', str(CFG), '--epochs', '2', '--topk', 'all',
              '--dtype', 'float32', '--shard-size', '12']
    _run([[sys.executable, *writer, *_opts(data, one)],
          [*_torchrun(2), *writer, '--launcher', 'pytorch', *_opts(data, two)]])
    m1, m2 = load_manifest(str(one)), load_manifest(str(two))
    assert m2.writer['world_size'] == 2 and m1.writer['world_size'] == 1
    assert m1.config_sha256 == m2.config_sha256 and len(m1.shards) == len(m2.shards) == 6
    for side in m1.shards:
        a = m1.open_part(side['epoch'], side['part'])
        b = m2.open_part(side['epoch'], side['part'])
        assert np.array_equal(a['index'], b['index']) and np.array_equal(a['crc'], b['crc'])
        np.testing.assert_allclose(a['logit'], b['logit'], rtol=0, atol=1e-6)

    train = ['tools/train.py', str(CFG)]
    _run([[sys.executable, *train, '--work-dir', str(tmp_path / 'w1'),
           *_opts(data, one, 'train_dataloader.batch_size=8')],
          [*_torchrun(2), *train, '--launcher', 'pytorch', '--work-dir', str(tmp_path / 'w2'),
           *_opts(data, two, 'train_dataloader.batch_size=4')]])
    a = safe_torch_load(tmp_path / 'w1' / 'iter_8.pth')
    b = safe_torch_load(tmp_path / 'w2' / 'iter_8.pth')
    assert a['meta']['iter'] == b['meta']['iter'] == 8
    assert a['state_dict'].keys() == b['state_dict'].keys()
    assert not any(k.startswith('teacher.') for k in a['state_dict'])
    for key in a['state_dict']:
        torch.testing.assert_close(b['state_dict'][key], a['state_dict'][key], atol=2e-6,
                                   rtol=1e-5, msg=key)
    moved = sum(float(v.abs().sum()) for v in a['optimizer']['state'][0].values()
                if isinstance(v, torch.Tensor))
    assert moved > 0  # it trained (momentum holds gradients)
