"""The main job (tools/demo.py) runs end to end in its --quick form and writes its outputs."""
import json
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO = osp.join(ROOT, 'tools', 'demo.py')
FMNIST = osp.join(ROOT, 'data', 'fashion_mnist', 't10k-images-idx3-ubyte')
DEBIAN = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'

needs_data = pytest.mark.skipif(
    not (osp.isfile(FMNIST) or osp.isfile(DEBIAN)),
    reason='Fashion-MNIST is installed by tools/setup.sh (apt: dataset-fashion-mnist)')


@pytest.mark.slow
@needs_data
def test_quick_demo_writes_table_json_and_plot(tmp_path) -> None:
    work_dir = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, DEMO, '--quick', '--work-dir', str(work_dir), '--threads', '1'],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((work_dir / 'results.json').read_text())
    runs = {(r['student'], r['method']): r for r in results['runs']}
    assert set(runs) == {(s, m) for s in ('cnn', 'mlp')
                         for m in ('labels', 'kd', 'scalekd', 'ssld')}
    assert 0.0 <= results['teacher']['top1'] <= 100.0
    for run in runs.values():
        assert 0.0 <= run['top1'] <= 100.0
        assert run['params'] > 0 and run['wall_s'] > 0
        assert run['iters'] == 6 and run['curve']  # validated during training
        steps = [step for step, _ in run['curve']]
        assert steps[0] > 0 and steps[-1] == 6  # logged by iteration, not by epoch
    # The distilled runs train the same student as the labels-only run.
    assert runs[('cnn', 'scalekd')]['params'] == runs[('cnn', 'labels')]['params']
    table = (work_dir / 'results.md').read_text()
    assert table.count('\n|') >= 10 and 'ScaleKD' in table and 'SSLD' in table
    png = (work_dir / 'accuracy_curves.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 5000
    assert 'done in' in proc.stdout and 'results.md' in proc.stdout


def _load_demo():
    import importlib.util
    spec = importlib.util.spec_from_file_location('mmscalekd_demo', DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('args,message', [
    (['--labels', '0'], '--labels must be positive'),
    (['--labels', '500', '--pool', '100'], 'need --labels <= --pool'),
    (['--val-size', '20000'], '--val-size must be <= 10000'),
    (['--val-size', '500', '--curve-size', '600'], '--curve-size must be <= --val-size (500)'),
    (['--curve-size', '0'], '--curve-size must be positive'),
    (['--methods', 'distill'], 'invalid choice'),
])
def test_demo_rejects_bad_options(args, message, capsys) -> None:
    demo = _load_demo()
    with pytest.raises(SystemExit) as exc:
        demo.parse_args(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_defaults_and_quick_settings() -> None:
    demo = _load_demo()
    full, quick = demo.parse_args([]), demo.parse_args(['--quick'])
    assert (full.labels, full.pool, full.val_size, full.iters) == (2000, 60000, 10000, None)
    assert (quick.labels, quick.pool, quick.val_size, quick.iters) == (100, 400, 200, 6)
    assert (full.curve_size, quick.curve_size, full.seed) == (1000, 200, 0)
    assert set(full.methods) == {'labels', 'kd', 'scalekd', 'ssld'}


def test_demo_configs_oversample_labels_and_split_val_and_test(tmp_path) -> None:
    """Mixed-batch runs keep about half of every batch labeled; SSLD sees each image once; the
    curves use a test subset and the table's number the whole requested test set."""
    from mmscalekd.registry import DATASETS
    from tests._builders import write_fake_fashion_mnist
    demo = _load_demo()
    data_root = str(tmp_path / 'fmnist')
    write_fake_fashion_mnist(data_root, 'train', 6000)
    write_fake_fashion_mnist(data_root, 'test', 10)
    args = demo.parse_args(['--labels', '500', '--pool', '6000', '--val-size', '3000',
                            '--curve-size', '700', '--seed', '3', '--data-root', data_root])
    kd = demo.load_config('configs/demo/kd_resnet18-w8_fashion-mnist-2k.py', args, str(tmp_path))
    ds = kd.train_dataloader.dataset
    assert (ds.labeled_repeat, ds.labeled.indices, ds.unlabeled.indices) == ('balanced', 500, 6000)
    built = DATASETS.build(ds)  # 6000 // 500: about half of every batch labeled
    assert (built.labeled_repeat, built.num_labeled, built.num_unlabeled) == (12, 6000, 6000)
    assert kd.val_dataloader.dataset.indices == 700
    assert kd.test_dataloader.dataset.indices == 3000
    assert kd.randomness.seed == 3
    ssld = demo.load_config('configs/demo/ssld_resnet18-w8_fashion-mnist-2k.py', args,
                            str(tmp_path))
    ds = ssld.train_dataloader.dataset
    assert (ds.labeled_repeat, ds.keep_labels) == (1, False)
    labels = demo.load_config('configs/demo/labels_resnet18-w8_fashion-mnist-2k.py', args,
                              str(tmp_path))
    assert labels.train_dataloader.dataset.indices == 500
