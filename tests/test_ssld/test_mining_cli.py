"""The mining CLI, in one process and sharded over 2 gloo processes started by torchrun."""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from mmscalekd.ssld.mining import load_scores
from tests.test_ssld._helpers import REPO, TINY_DISTILLER, textured, tiny_teacher_checkpoint

TOOL = osp.join(REPO, 'tools', 'ssld', 'mine_unlabeled.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONPATH=REPO)


def _tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location('mine_unlabeled', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _exit_message(argv) -> str:
    """Run the CLI in this process; it must stop with an error message."""
    with pytest.raises(SystemExit) as exc:
        _tool().main([str(a) for a in argv])
    assert isinstance(exc.value.code, str), exc.value.code
    return exc.value.code


def _run(args, launcher_prefix=(), timeout=600):
    return subprocess.run([*launcher_prefix, *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=REPO)


@pytest.mark.slow
def test_two_gloo_processes_select_exactly_what_one_process_selects(tmp_path, capsys):
    pool, val = tmp_path / 'pool', tmp_path / 'val'
    for i in range(13):
        textured(str(pool / f'd{i % 3}' / f'img {i}.png'), (20 * i, 120, 250 - 15 * i), seed=i)
    (pool / 'd0' / 'broken.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    for i in range(3):
        textured(str(val / f'v{i}.png'), (30 * i, 60, 90), seed=100 + i)
    config = tmp_path / 'tiny.py'
    config.write_text(TINY_DISTILLER)
    ckpt = tiny_teacher_checkpoint(str(config), str(tmp_path / 'teacher.pth'))
    common = [str(config), '--checkpoint', ckpt, '--pool', str(pool), '--val', str(val),
              '--topk', '2', '--workers', '0', '--batch-size', '2', '--save-every', '1',
              '--dedup', 'both', '--cosine-threshold', '0.999', '--device', 'cpu',
              '--progress-interval', '0']
    one, two = tmp_path / 'one', tmp_path / 'two'
    _tool().main([*common, '--out', str(one)])
    err = capsys.readouterr().err
    assert 'pool: 14/14 images (100.0%)' in err and 'img/s, ETA 0:00:00' in err
    torchrun = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                '--nproc_per_node=2']
    proc = _run([TOOL, *common, '--out', str(two), '--launcher', 'pytorch'], torchrun)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'rank 0 of 2 (7 of 14 images to score)' in proc.stderr

    for name in ('filelist.txt', 'selection.csv', 'duplicates.csv', 'unreadable.txt'):
        assert (two / name).read_bytes() == (one / name).read_bytes(), name
    assert (one / 'unreadable.txt').read_text() == 'd0/broken.jpg\n'
    s1, s2 = (load_scores(str(d)) for d in (one, two))
    assert sorted(s1) == sorted(s2) and len(s1) == 13
    for path in s1:
        np.testing.assert_array_equal(s1[path][0], s2[path][0])
        np.testing.assert_allclose(s1[path][1], s2[path][1], atol=1e-6)
    parts = sorted(os.listdir(two / 'parts'))
    assert {p[:11] for p in parts} == {'part-r00000', 'part-r00001'}  # each rank its own parts
    summary1, summary2 = (json.loads((d / 'summary.json').read_text()) for d in (one, two))
    assert summary1['fingerprint_digest'] == summary2['fingerprint_digest']
    assert summary2['throughput']['world_size'] == 2
    assert summary2['throughput']['images_scored_this_run'] == 14
    assert len(summary2['throughput']['images_per_s_per_process']) == 2
    assert summary1['num_selected_images'] == summary2['num_selected_images'] > 0

    # other options into the same folder: refused, what differs is named
    msg = _exit_message([*common, '--out', two, '--phash-threshold', '2'])
    assert 'phash_threshold: 4 -> 2' in msg and '--force' in msg
    assert (two / 'filelist.txt').read_bytes() == (one / 'filelist.txt').read_bytes()


def test_cli_errors_name_the_bad_value(tmp_path, monkeypatch):
    (tmp_path / 'val').mkdir()
    msg = _exit_message([tmp_path / 'nope.py', '--pool', 'x', '--val', 'x', '--topk', '5',
                         '--out', tmp_path / 'out'])
    assert msg.startswith('tools/ssld/mine_unlabeled.py: error: config ') and 'nope.py' in msg
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(TINY_DISTILLER)
    msg = _exit_message([cfg, '--pool', tmp_path / 'missing', '--val', tmp_path / 'val',
                         '--topk', '5', '--out', tmp_path / 'out'])
    assert "error: pool folder '" in msg and 'missing' in msg
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    msg = _exit_message([cfg, '--pool', tmp_path / 'val', '--val', tmp_path / 'val', '--topk',
                         '5', '--out', tmp_path / 'out', '--launcher', 'pytorch'])
    assert 'RANK' in msg and 'tools/ssld/dist_mine.sh' in msg
    assert not (tmp_path / 'out').exists()
