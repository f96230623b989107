"""2 gloo processes with batch B train to the same weights as 1 process with batch 2B.

The model uses GroupNorm instead of BatchNorm: BN statistics are per process, so with BN the
two runs differ by design (SyncBN would fix that but needs CUDA in torch). With per-sample
normalisation, a mean loss and DDP's gradient averaging over equal per-process batches, the
gradient of each step is the same; DefaultSampler gives rank r the samples perm[r::2], so each
step of the 2-process run sees exactly the 2B samples of the 1-process step. There is no random
augmentation (each process has its own RNG stream).
"""
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmscalekd.utils import safe_torch_load

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests/data/configs/tiny_resnet_custom.py'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_batch_b_equal_one_process_batch_2b(tmp_path: Path) -> None:
    import cv2
    data = tmp_path / 'images'
    rng = np.random.default_rng(0)
    for cls in ('cat', 'dog'):
        (data / cls).mkdir(parents=True)
        for i in range(8):
            cv2.imwrite(str(data / cls / f'{i}.png'),
                        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    common = ['model.backbone.norm_cfg.type=GN', 'model.backbone.norm_cfg.num_groups=4',
              'train_cfg.max_iters=3', 'default_hooks.checkpoint.interval=3',
              f'train_dataloader.dataset.data_root={data}', 'val_cfg=None',
              'val_dataloader=None', 'val_evaluator=None']
    single = [sys.executable, 'tools/train.py', str(CFG), '--work-dir', str(tmp_path / 'one'),
              '--cfg-options', 'train_dataloader.batch_size=4', *common]
    ddp = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(_free_port()), 'tools/train.py', str(CFG), '--launcher',
           'pytorch', '--work-dir', str(tmp_path / 'two'), '--cfg-options',
           'train_dataloader.batch_size=2', *common]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for cmd in (single, ddp)]
    for proc in procs:
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, out[-4000:]
    ckpt_one = safe_torch_load(tmp_path / 'one' / 'iter_3.pth')
    ckpt_two = safe_torch_load(tmp_path / 'two' / 'iter_3.pth')
    assert ckpt_one['meta']['iter'] == ckpt_two['meta']['iter'] == 3
    one, two = ckpt_one['state_dict'], ckpt_two['state_dict']
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=2e-6, rtol=1e-5, msg=key)
    # Training happened (not two identical fresh inits): momentum buffers hold gradients, and
    # they agree too.
    for a, b in zip(ckpt_one['optimizer']['state'].values(),
                    ckpt_two['optimizer']['state'].values()):
        torch.testing.assert_close(b['momentum_buffer'], a['momentum_buffer'], atol=2e-6,
                                   rtol=1e-5)
    assert float(ckpt_one['optimizer']['state'][0]['momentum_buffer'].abs().sum()) > 0
