"""The launch scripts share ``tools/_launch_checks.sh``: bad numbers and a missing ``srun`` fail
with one line naming the script and the value, before anything is launched."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLURM = {'tools/slurm_train.sh': ['p', 'job', 'cfg.py', 'work'],
         'tools/slurm_test.sh': ['p', 'job', 'cfg.py', 'ckpt.pth'],
         'tools/ssld/slurm_mine.sh': ['p', 'job', 'cfg.py']}


def _run(script: str, args: List[str], path: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()
               if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS')}
    environ.update(env, PATH=path)
    return subprocess.run(['bash', str(ROOT / script), *args], env=environ, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def fake_srun(tmp_path: Path) -> str:
    """A PATH whose ``srun`` prints its arguments instead of submitting a job."""
    (tmp_path / 'srun').write_text('#!/bin/sh\necho "srun $*"\n')
    (tmp_path / 'srun').chmod(0o755)
    return f'{tmp_path}:{os.environ["PATH"]}'


@pytest.mark.parametrize('script', sorted(SLURM))
def test_slurm_scripts_say_srun_is_missing(script: str, tmp_path: Path) -> None:
    if shutil.which('srun', path='/usr/bin:/bin'):
        pytest.skip('srun is installed system-wide here')
    empty = tmp_path / 'bin'
    empty.mkdir()
    proc = _run(script, SLURM[script], f'{empty}:/usr/bin:/bin')
    assert proc.returncode == 1, proc.stderr
    assert f"{script}: 'srun' was not found on PATH" in proc.stderr
    assert 'command not found' not in proc.stderr and proc.stdout == ''


@pytest.mark.parametrize('script', sorted(SLURM))
def test_slurm_scripts_refuse_bad_numbers(script: str, fake_srun: str) -> None:
    proc = _run(script, SLURM[script], fake_srun, GPUS_PER_NODE='eight')
    assert proc.returncode == 2 and "GPUS_PER_NODE must be" in proc.stderr
    assert "got 'eight'" in proc.stderr and proc.stdout == ''
    proc = _run(script, SLURM[script], fake_srun, GPUS='0')
    assert proc.returncode == 2 and "GPUS must be the total number of Slurm tasks" in proc.stderr
    proc = _run(script, SLURM[script], fake_srun, CPUS_PER_TASK='-1')
    assert proc.returncode == 2 and "CPUS_PER_TASK must be" in proc.stderr


def test_slurm_script_passes_tasks_and_gres_to_srun(fake_srun: str) -> None:
    proc = _run('tools/slurm_train.sh', [*SLURM['tools/slurm_train.sh'], '--amp'], fake_srun,
                GPUS='16', GPUS_PER_NODE='8')
    assert proc.returncode == 0, proc.stderr
    assert '--ntasks=16 --gres=gpu:8 --ntasks-per-node=8 --cpus-per-task=5' in proc.stdout
    assert proc.stdout.rstrip().endswith(
        'tools/train.py cfg.py --work-dir=work --launcher=slurm --amp')
    proc = _run('tools/slurm_test.sh', SLURM['tools/slurm_test.sh'], fake_srun,
                GPUS='2', GPUS_PER_NODE='0')
    assert proc.returncode == 0 and '--gres' not in proc.stdout  # CPU nodes


def test_dist_mine_checks_gpus_and_port() -> None:
    path = os.environ['PATH']
    proc = _run('tools/ssld/dist_mine.sh', ['cfg.py', 'x'], path)
    assert proc.returncode == 2
    assert "dist_mine.sh: GPUS must be the number of processes per node" in proc.stderr
    proc = _run('tools/ssld/dist_mine.sh', ['cfg.py', '1'], path, PORT='70000')
    assert proc.returncode == 2 and "PORT must be a TCP port number (1-65535), got '70000'" \
        in proc.stderr
    proc = _run('tools/ssld/dist_mine.sh', ['cfg.py'], path)
    assert proc.returncode == 2 and proc.stderr.startswith('usage: ')
