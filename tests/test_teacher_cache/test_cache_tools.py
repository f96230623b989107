"""The command lines: tools/write_teacher_cache.py and the cache benchmark."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmscalekd.teacher_cache import load_manifest
from tests.test_teacher_cache.cache_helpers import CFG, ROOT, make_data, options


def _tool(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> dict:
    return make_data(tmp_path_factory.mktemp('tools'))


def _cli_options(data: dict, cache: Path) -> list:
    return ['--cfg-options', *[f'{k}={v}' for k, v in options(data, cache).items()]]


def test_write_tool_writes_and_derives(data: dict, tmp_path: Path, capsys) -> None:
    tool = _tool('tools/write_teacher_cache.py')
    cache = tmp_path / 'c'
    tool.main([str(CFG), '--epochs', '2', '--topk', '4', '--shard-size', '16',
               *_cli_options(data, cache)])
    assert 'top-4 of 10 in float16 (24 B per sample and epoch)' in capsys.readouterr().out
    m = load_manifest(str(cache))
    assert (m.epochs, m.topk, m.dtype, len(m.shards)) == (2, 4, 'float16', 4)
    small = tmp_path / 'small'
    tool.main([str(CFG), '--from-cache', str(cache), '--topk', '2', '--out', str(small),
               *_cli_options(data, cache)])
    assert load_manifest(str(small)).topk == 2


@pytest.mark.parametrize('argv, message', [
    (['--topk', 'few'], "--topk must be a positive int or 'all'"),
    (['--topk', '0'], '--topk must be >= 1'),
    (['--epochs', '0'], '--epochs must be >= 1'),
])
def test_write_tool_refuses_bad_arguments(argv: list, message: str, capsys) -> None:
    tool = _tool('tools/write_teacher_cache.py')
    with pytest.raises(SystemExit):
        tool.parse_args([str(CFG), *argv])
    assert message in capsys.readouterr().err


def test_write_tool_names_why_a_config_cannot_be_cached(data: dict, tmp_path: Path) -> None:
    cmd = [sys.executable, 'tools/write_teacher_cache.py', 'configs/demo/kd_resnet18-w8_fashion-'
           'mnist-2k.py', '--out', str(tmp_path / 'x')]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'must be a TeacherCacheDataset' in proc.stderr and 'Traceback' not in proc.stderr


def test_benchmark_tool_times_both_modes(data: dict, tmp_path: Path) -> None:
    tool = _tool('tools/analysis_tools/benchmark_teacher_cache.py')
    out = tmp_path / 'bench.json'
    opts = {k: v for k, v in options(data, tmp_path).items() if 'cache_dir' not in k}
    report = tool.main([str(CFG), '--steps', '2', '--warmup', '1', '--work-dir',
                        str(tmp_path / 'w'), '--out', str(out), '--cfg-options',
                        *[f'{k}={v}' for k, v in opts.items()]])
    r = report['results'][0]
    assert r['live']['wall_ms'] > 0 and r['cached']['wall_ms'] > 0
    assert r['ratio_wall'] == pytest.approx(r['cached']['wall_ms'] / r['live']['wall_ms'],
                                            rel=1e-2)
    assert r['bytes_per_sample_epoch'] == 4 * 10 + 8 and r['write']['samples'] == 32
    assert r['cached_model_has_teacher'] is False and r['teacher_params'] > 0
    assert json.loads(out.read_text())['results'][0]['topk'] == 10


def test_topk_sweep_tool_trains_one_run_per_cache(data: dict, tmp_path: Path) -> None:
    from mmscalekd.teacher_cache.writer import write_teacher_cache
    from tests.test_teacher_cache.cache_helpers import tiny_config
    source = tmp_path / 'all'
    write_teacher_cache(tiny_config(data, source), epochs=2, topk=None, dtype='float32')
    tool = _tool('tools/analysis_tools/teacher_cache_topk_sweep.py')
    results = tool.main([str(CFG), '--source', str(source), '--topk', '3', '--also-source',
                         '--live', '--work-dir', str(tmp_path / 'sweep'), '--cfg-options',
                         *[f'{k}={v}' for k, v in options(data, source).items()]])
    assert [r['name'] for r in results] == ['live teacher', 'cache top-10 float32',
                                            'cache top-3 float16']
    assert [r.get('bytes') for r in results] == [None, 68, 20]
    assert json.loads((tmp_path / 'sweep' / 'sweep.json').read_text())['results'][2]['bytes'] \
        == 20
