"""The demo's results: mean ± std over seeds, paired differences, table, curves, outputs."""
import json
import os
import subprocess
import sys

import pytest

from mmscalekd.demo import outputs
from mmscalekd.demo.results import aggregate, format_table, mean_std, plot_curves, write_results


def _run(student, method, seed, top1, curve=None):
    return dict(student=student, method=method, seed=seed, top1=top1, params=180000,
                wall_s=10.0, curve=curve or [[2, top1 - 5], [4, top1]])


RUNS = [
    _run('cnn', 'labels', 0, 80.0), _run('cnn', 'labels', 1, 82.0), _run('cnn', 'labels', 2, 81.0),
    _run('cnn', 'kd', 0, 81.0), _run('cnn', 'kd', 1, 81.5), _run('cnn', 'kd', 2, 82.5),
    _run('cnn', 'scalekd', 0, 83.0), _run('cnn', 'scalekd', 1, 84.0),
    _run('cnn', 'scalekd', 2, 84.5),
]


def test_mean_std_is_the_sample_std() -> None:
    assert mean_std([80.0, 82.0, 81.0]) == (81.0, 1.0)
    assert mean_std([5.0]) == (5.0, None)
    with pytest.raises(ValueError):
        mean_std([])


def test_aggregate_cells_and_paired_differences() -> None:
    summary = aggregate(RUNS)
    cells = {(c['student'], c['method']): c for c in summary['cells']}
    assert (cells['cnn', 'labels']['mean'], cells['cnn', 'labels']['std']) == (81.0, 1.0)
    assert cells['cnn', 'kd']['seeds'] == [0, 1, 2]
    comps = {(c['method'], c['baseline']): c for c in summary['comparisons']}
    # kd - labels per seed: +1.0, -0.5, +1.5 -> mean 0.667, std 1.041: within the spread
    kd = comps['kd', 'labels']
    assert kd['differences'] == [1.0, -0.5, 1.5] and kd['within_spread'] is True
    assert kd['mean'] == pytest.approx(2 / 3, abs=1e-3)
    assert kd['std'] == pytest.approx(1.041, abs=1e-3)
    # scalekd - kd per seed: +2.0, +2.5, +2.0 -> mean 2.167, std 0.289: beyond the spread
    sk = comps['scalekd', 'kd']
    assert sk['differences'] == [2.0, 2.5, 2.0] and sk['within_spread'] is False
    assert ('ssld', 'labels') not in comps  # no SSLD runs


def _results(runs, seeds):
    summary = aggregate(runs)
    return dict(setting=dict(data_name='fashion_mnist', labels=2000, num_classes=10, pool=60000,
                             iters=300, seeds=seeds, val_size=10000, curve_size=1000),
                teacher=dict(summary='trained on 58000 labeled images', top1=89.6,
                             params=800000),
                runs=runs, warnings=['a warning'], **summary)


def test_table_shows_mean_std_and_marks_differences_within_the_spread() -> None:
    table = format_table(_results(RUNS, [0, 1, 2]))
    assert 'seeds 0, 1, 2' in table and 'mean ± std over the seeds' in table
    assert '| labels only | 81.00 ± 1.00 |  |' in table
    assert '| logit KD | 81.67 ± 0.76 | +0.67 ± 1.04 (within spread) |' in table
    assert '| ScaleKD (CAP+DFM+TPP+KD) | 83.83 ± 0.76 | +2.83 ± 0.76 |' in table
    assert ('ScaleKD (CAP+DFM+TPP+KD) - logit KD, ResNet-18 (CIFAR stem, width 8): '
            '+2.17 ± 0.29 points (beyond the seed spread)') in table
    assert '**Warning:** a warning' in table and '| 89.60 |' in table


def test_one_seed_says_the_spread_is_unknown() -> None:
    one = [r for r in RUNS if r['seed'] == 0]
    table = format_table(_results(one, [0]))
    assert '(one seed: spread unknown)' in table and '±' not in table.split('\n\n')[2]
    assert 'run with --seeds 3' in table


def test_curves_png_with_bands(tmp_path) -> None:
    png = plot_curves(_results(RUNS, [0, 1, 2]))
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000
    paths = write_results(_results(RUNS, [0, 1, 2]), str(tmp_path))
    assert json.loads(open(paths['json']).read())['cells'][0]['std'] == 1.0
    assert sorted(os.listdir(tmp_path)) == ['accuracy_curves.png', 'results.json', 'results.md']


def test_an_earlier_run_is_kept_or_replaced_as_asked(tmp_path) -> None:
    work = str(tmp_path)
    (tmp_path / 'runs' / 'seed0').mkdir(parents=True)
    (tmp_path / 'results.json').write_text('{"old": 1}')
    (tmp_path / 'teachers').mkdir()  # trained teachers stay where they are
    moved = outputs.keep_or_replace_outputs(work, replace=False)
    assert moved.startswith(os.path.join(work, 'previous', ''))
    assert json.loads(open(os.path.join(moved, 'results.json')).read()) == {'old': 1}
    assert os.path.isdir(os.path.join(moved, 'runs', 'seed0'))
    assert outputs.existing_outputs(work) == [] and os.path.isdir(tmp_path / 'teachers')
    (tmp_path / 'results.md').write_text('old table')
    assert outputs.keep_or_replace_outputs(work, replace=True) is None
    assert not (tmp_path / 'results.md').exists()
    assert outputs.keep_or_replace_outputs(work, replace=False) is None  # nothing to keep


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path) -> None:
    path = str(tmp_path / 'results.md')
    outputs.atomic_write_text(path, 'good')

    def broken(f):
        f.write(b'half')
        raise RuntimeError('killed')

    with pytest.raises(RuntimeError):
        outputs.atomic_write(path, broken)
    assert open(path).read() == 'good' and os.listdir(tmp_path) == ['results.md']


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path) -> None:
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / 'sub' / f'.results.json.tmp-{dead}'
    stale.parent.mkdir()
    stale.write_text('partial')
    mine = tmp_path / f'.x.tmp-{os.getpid()}'  # a write in progress in this process
    mine.write_text('in progress')
    assert outputs.remove_stale_temporaries(str(tmp_path)) == []  # not recursive
    assert outputs.remove_stale_temporaries(str(tmp_path), recursive=True) == [str(stale)]
    assert mine.exists()
