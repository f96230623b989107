"""A NaN loss stops tools/train.py by default (exit status 1, the last finite checkpoint named
and kept); with the guard turned off, rotation still keeps the last finite checkpoint."""
import subprocess
import sys
from pathlib import Path

import pytest

from mmscalekd.utils import safe_torch_load
from tests.test_reliability.test_resume import _env, image_folder  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests/data/configs/tiny_resnet_custom.py'


def _train(work_dir: Path, data_root: Path, *options: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, 'tools/train.py', str(CFG), '--work-dir', str(work_dir),
           '--no-validate', '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
           'default_hooks.checkpoint.max_keep_ckpts=2', *options]
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)


# The input scale std=1e-39 turns every image into inf, the loss into NaN (the case of a wrong
# normalisation); resumed from iteration 4 of a healthy run.
BROKEN = ('data_preprocessor.std=[1e-39]', 'train_cfg.max_iters=8')


@pytest.mark.slow
def test_nan_loss_stops_the_run_and_names_the_last_finite_checkpoint(
        tmp_path: Path, image_folder: Path) -> None:  # noqa: F811
    work = tmp_path / 'work'
    healthy = _train(work, image_folder)
    assert healthy.returncode == 0, healthy.stderr[-3000:]
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth', 'iter_4.pth']

    broken = _train(work, image_folder, *BROKEN, '--resume')
    assert broken.returncode == 1, broken.stderr[-3000:]
    message = broken.stderr.strip().splitlines()[-1]
    assert message.startswith('tools/train.py: error: Non-finite loss at iteration 5')
    assert 'loss=nan' in message
    assert f'The newest checkpoint with finite weights is {work / "iter_4.pth"}' in message
    assert 'Traceback' not in broken.stderr
    # Nothing was saved from the broken steps; the finite checkpoints are all there.
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_4.pth')

    # Guard off: the run goes on and saves NaN checkpoints, but rotation keeps iter_4.
    unguarded = _train(work, image_folder, *BROKEN, 'default_hooks.non_finite=None', '--resume')
    assert unguarded.returncode == 0, unguarded.stderr[-3000:]
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_4.pth', 'iter_6.pth',
                                                         'iter_8.pth']
    assert safe_torch_load(work / 'iter_8.pth')['meta']['finite_weights'] is False
    assert safe_torch_load(work / 'iter_4.pth')['meta']['finite_weights'] is True
    assert f'The newest checkpoint with finite weights is {work / "iter_4.pth"}' in (
        unguarded.stdout + unguarded.stderr)
