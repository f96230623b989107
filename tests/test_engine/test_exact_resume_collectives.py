"""Exact resume in DDP (2 gloo processes): no collective on iterations that do not save, one
gather of the RNG states per checkpoint, and a resume from a mid-epoch checkpoint that ends
bitwise equal to the uninterrupted run."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmscalekd.utils import safe_torch_load
from tests.test_reliability.test_resume import (  # noqa: F401  (image_folder is a fixture)
    _assert_same_training_state,
    _env,
    image_folder,
)

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests/data/configs/tiny_resume_classifier_counted.py'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_train(work_dir: Path, data_root: Path, *extra: str) -> None:
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
           '--master_port', str(_free_port()), 'tools/train.py', str(CFG), '--launcher',
           'pytorch', '--work-dir', str(work_dir), *extra, '--cfg-options',
           f'train_dataloader.dataset.data_root={data_root}']
    out = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='gloo on CPU')
def test_two_processes_gather_only_when_saving_and_resume_exactly(
        tmp_path: Path, image_folder: Path) -> None:  # noqa: F811
    full = tmp_path / 'full'
    _ddp_train(full, image_folder)
    saved = {3, 6, 8}  # interval 3, and the last iteration (save_last)
    assert {int(p.stem[5:]) for p in full.glob('iter_*.pth')} == {6, 8}  # max_keep_ckpts=2
    for rank in (0, 1):
        counts = json.loads((full / f'collectives_rank{rank}.json').read_text())
        per_iter = {int(k): v for k, v in counts.items() if k != 'outside'}
        assert sorted(per_iter) == [i for i in range(1, 9) if i in saved], counts
        for it in range(1, 9):
            # Zero on the 5 iterations without a checkpoint; one gather on the 3 with one.
            assert per_iter.get(it, 0) == (1 if it in saved else 0), (rank, it, counts)

    ckpt = safe_torch_load(full / 'iter_6.pth')
    state = ckpt['exact_resume']
    assert state['world_size'] == 2 and len(state['rng']) == 2
    assert state['batches_per_epoch'] == 4  # 8 images per process, batch 2

    # Resume both processes from iteration 6 (epoch 2, batch 2) of a copy of the run.
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(full / 'iter_6.pth', resumed / 'iter_6.pth')
    _ddp_train(resumed, image_folder, '--resume', str(resumed / 'iter_6.pth'))
    _assert_same_training_state(safe_torch_load(full / 'iter_8.pth'),
                                safe_torch_load(resumed / 'iter_8.pth'))
    assert os.path.getsize(resumed / 'iter_8.pth') > 0
