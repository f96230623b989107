"""The main job: distil a small ViT teacher into CNN and MLP students on Fashion-MNIST, on CPU.

Runs the real configs (``configs/demo/``), the real ``ScaleKDDistiller`` and MMEngine's Runner in a
label-scarce setting: each student is trained with (a) labels only, (b) logit KD, (c) ScaleKD
(CAP + DFM + TPP + KD) and (d) SSLD (label-free, all images), for the same number of steps. It then
writes a table (teacher, each student x method: top-1, params, wall time) as Markdown and JSON and a
PNG of the accuracy curves into the work dir.

    python tools/demo.py              # the full demo (about 9 min on 2 idle cores)
    python tools/demo.py --quick      # a smoke run, about 45 s on 2 idle cores (used by the tests)

The teacher is ``checkpoints/demo/vit-teacher_fashion-mnist.pth`` (trained by
``configs/demo/vit-teacher_fashion-mnist.py``); when it is absent the demo trains it first.
"""
from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import os.path as osp
import shutil
import sys
import time
from typing import Any, Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

STUDENTS = {'cnn': 'resnet18-w8', 'mlp': 'mixer-t4'}
STUDENT_NAMES = {
    'cnn': 'ResNet-18 (CIFAR stem, width 8)',
    'mlp': 'MLP-Mixer (4 blocks, width 64)'
}
METHODS = ['labels', 'kd', 'scalekd', 'ssld']
METHOD_NAMES = {
    'labels': 'labels only', 'kd': 'logit KD', 'scalekd': 'ScaleKD (CAP+DFM+TPP+KD)',
    'ssld': 'SSLD (label-free)'
}
TEACHER_CONFIG = 'configs/demo/vit-teacher_fashion-mnist.py'
TEACHER_CKPT = 'checkpoints/demo/vit-teacher_fashion-mnist.pth'
FMNIST_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte',
                't10k-labels-idx1-ubyte')
DEBIAN_FMNIST = '/usr/share/datasets/fashion-mnist'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/demo', help='where results go')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run (about 45 s on 2 idle cores): few labels, small pool, '
                             'few steps')
    parser.add_argument('--students', nargs='+', choices=sorted(STUDENTS), default=['cnn', 'mlp'])
    parser.add_argument('--methods', nargs='+', choices=METHODS, default=METHODS)
    parser.add_argument('--labels', type=int, default=None,
                        help='labeled training images (default 2000; quick: 100)')
    parser.add_argument('--pool', type=int, default=None,
                        help='training images the teacher sees (default 60000; quick: 400)')
    parser.add_argument('--iters', type=int, default=None,
                        help='optimizer steps per run (default: the configs\' 300; quick: 6)')
    parser.add_argument('--val-size', type=int, default=None,
                        help='test images of the final evaluation in the table (default all '
                             '10000; quick: 200)')
    parser.add_argument('--curve-size', type=int, default=None,
                        help='test images of the evaluations during training, for the curves '
                             '(the first N of the test set; default 1000, at most --val-size)')
    parser.add_argument('--teacher-ckpt', default=TEACHER_CKPT,
                        help='teacher checkpoint; trained with the teacher config when missing')
    parser.add_argument('--teacher-epochs', type=int, default=None,
                        help='epochs when the teacher must be trained (default: its config\'s)')
    parser.add_argument('--data-root', default='data/fashion_mnist')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed of every run (default 0, as in the configs)')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1,
                        help='torch threads (default: all cores)')
    args = parser.parse_args(argv)
    quick = args.quick
    args.labels = args.labels if args.labels is not None else (100 if quick else 2000)
    args.pool = args.pool if args.pool is not None else (400 if quick else 60000)
    args.val_size = args.val_size if args.val_size is not None else (200 if quick else 10000)
    if args.curve_size is None:
        args.curve_size = min(1000, args.val_size)
    for name in ('labels', 'pool', 'val_size', 'curve_size'):
        if getattr(args, name) <= 0:
            parser.error(f'--{name.replace("_", "-")} must be positive, got {getattr(args, name)}')
    if not args.labels <= args.pool <= 60000:
        parser.error(f'need --labels <= --pool <= 60000, got {args.labels} and {args.pool}')
    if args.val_size > 10000:
        parser.error(f'--val-size must be <= 10000 (the test set), got {args.val_size}')
    if args.curve_size > args.val_size:
        parser.error(f'--curve-size must be <= --val-size ({args.val_size}), '
                     f'got {args.curve_size}')
    if args.iters is not None and args.iters <= 0:
        parser.error(f'--iters must be positive, got {args.iters}')
    if quick and args.iters is None:
        args.iters = 6
    return args


def ensure_data(data_root: str) -> None:
    """Make sure the uncompressed Fashion-MNIST IDX files are in ``data_root``."""
    missing = [f for f in FMNIST_FILES if not osp.isfile(osp.join(data_root, f))]
    if not missing:
        return
    if not all(osp.isfile(osp.join(DEBIAN_FMNIST, f + '.gz')) for f in missing):
        raise SystemExit(
            f'Fashion-MNIST is missing from {data_root!r} ({", ".join(missing)}) and the Debian '
            f'package files are not in {DEBIAN_FMNIST}. Run `bash tools/setup.sh` (it installs '
            '`dataset-fashion-mnist`) or put the uncompressed IDX files there.')
    os.makedirs(data_root, exist_ok=True)
    for name in missing:
        with gzip.open(osp.join(DEBIAN_FMNIST, name + '.gz'), 'rb') as src, \
                open(osp.join(data_root, name + '.tmp'), 'wb') as dst:
            shutil.copyfileobj(src, dst)
        os.replace(osp.join(data_root, name + '.tmp'), osp.join(data_root, name))


def _set_fmnist(node: Any, data_root: str, labeled: int, pool: int) -> None:
    """Point every FashionMNIST dataset dict at ``data_root`` and resize the demo's subsets."""
    if isinstance(node, dict):
        if node.get('type') == 'LabeledUnlabeledDataset':
            # labeled_repeat='balanced' follows the subset sizes set here (~half of a batch labeled)
            _set_fmnist(node['labeled'], data_root, labeled, labeled)
            _set_fmnist(node['unlabeled'], data_root, pool, pool)
            return
        if node.get('type') in ('FashionMNIST', 'ArrayFashionMNIST'):
            node['data_root'] = data_root
            if not node.get('test_mode', False):
                node['indices'] = labeled
            return
        for value in node.values():
            _set_fmnist(value, data_root, labeled, pool)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _set_fmnist(value, data_root, labeled, pool)


def _set_iters(cfg: Any, iters: int) -> None:
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = max(1, iters // 5)
    warmup = min(100, max(1, iters // 10))
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup),
        dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup, T_max=max(1, iters - warmup),
             eta_min=1e-5),
    ]
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.logger.interval = max(1, min(100, iters // 10))


def load_config(path: str, args: argparse.Namespace, work_dir: str) -> Any:
    from mmengine.config import Config

    from mmscalekd.utils import adapt_cfg_to_device
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.work_dir = work_dir
    _set_fmnist(cfg.get('train_dataloader', {}), args.data_root, args.labels, args.pool)
    # Evaluations during training (the curves) use the first `curve_size` test images; the
    # final number in the table is runner.test() on `val_size` of them (all 10000 by default).
    for key, size in (('val_dataloader', args.curve_size), ('test_dataloader', args.val_size)):
        if cfg.get(key):  # separate dicts even where the file says test_dataloader = val_...
            cfg[key].dataset.data_root = args.data_root
            cfg[key].dataset.indices = size
    teacher = cfg.model.get('teacher')
    if teacher is not None:
        teacher.checkpoint = args.teacher_ckpt
    if args.iters is not None and cfg.train_cfg.get('by_epoch') is False:
        _set_iters(cfg, args.iters)
    cfg.randomness.seed = args.seed
    cfg.log_level = 'WARNING' if args.quick else 'INFO'
    return adapt_cfg_to_device(cfg)


def _accuracy_curve(log_dir: str) -> List[List[float]]:
    """(step, top-1) pairs from MMEngine's ``vis_data/scalars.json``."""
    path = osp.join(log_dir, 'vis_data', 'scalars.json')
    curve = []
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'accuracy/top1' in record:
                    curve.append([record['step'], record['accuracy/top1']])
    return curve


def _num_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def ensure_teacher(args: argparse.Namespace) -> None:
    """Train the teacher with its own config when no checkpoint is there."""
    if osp.isfile(args.teacher_ckpt):
        return
    import torch
    from mmengine.runner import Runner
    print(f'[demo] no teacher checkpoint at {args.teacher_ckpt}: training it with '
          f'{TEACHER_CONFIG}', flush=True)
    work_dir = osp.join(args.work_dir, 'teacher')
    cfg = load_config(TEACHER_CONFIG, args, work_dir)
    _set_fmnist(cfg.train_dataloader, args.data_root, args.pool, args.pool)
    if args.teacher_epochs is not None:
        cfg.train_cfg.max_epochs = args.teacher_epochs
        cfg.param_scheduler[1].T_max = max(1, args.teacher_epochs - 1)
    if args.quick and args.teacher_epochs is None:
        cfg.train_cfg.max_epochs = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    os.makedirs(osp.dirname(osp.abspath(args.teacher_ckpt)), exist_ok=True)
    state = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
    torch.save({'state_dict': state, 'meta': {'config': TEACHER_CONFIG,
                                              'epochs': cfg.train_cfg.max_epochs}},
               args.teacher_ckpt)
    print(f'[demo] teacher saved to {args.teacher_ckpt}', flush=True)


def evaluate_teacher(args: argparse.Namespace) -> Dict[str, Any]:
    from mmengine.runner import Runner
    cfg = load_config(TEACHER_CONFIG, args, osp.join(args.work_dir, 'teacher_eval'))
    cfg.load_from = args.teacher_ckpt
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    return dict(top1=float(metrics['accuracy/top1']), params=_num_params(runner.model))


def train_one(student: str, method: str, args: argparse.Namespace) -> Dict[str, Any]:
    from mmengine.runner import Runner
    path = f'configs/demo/{method}_{STUDENTS[student]}_fashion-mnist-2k.py'
    work_dir = osp.join(args.work_dir, 'runs', f'{method}_{STUDENTS[student]}')
    cfg = load_config(path, args, work_dir)
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()  # the student on the test images (predict delegates to it)
    wall = time.perf_counter() - start
    model = runner.model
    model = getattr(model, 'module', model)
    student_model = getattr(model, 'student', model)
    curve = _accuracy_curve(runner.log_dir)
    return dict(student=student, method=method, config=path,
                top1=float(metrics['accuracy/top1']), params=_num_params(student_model),
                wall_s=round(wall, 1), iters=cfg.train_cfg.max_iters, curve=curve)


def write_results(results: Dict[str, Any], args: argparse.Namespace) -> Dict[str, str]:
    os.makedirs(args.work_dir, exist_ok=True)
    paths = {k: osp.join(args.work_dir, f'results.{k}') for k in ('md', 'json')}
    paths['png'] = osp.join(args.work_dir, 'accuracy_curves.png')
    with open(paths['json'], 'w') as f:
        json.dump(results, f, indent=2)

    teacher = results['teacher']
    lines = [
        f'# Demo: ViT teacher -> CNN and MLP students on Fashion-MNIST '
        f'({results["setting"]["labels"]} labels, teacher sees {results["setting"]["pool"]} '
        f'images, {results["setting"]["iters"]} steps per run)', '',
        '| model | method | top-1 (%) | params (M) | wall time (s) |', '|---|---|---|---|---|',
        f'| ViT teacher (p7, d128, 4 blocks) | trained on all labels | {teacher["top1"]:.2f} | '
        f'{teacher["params"] / 1e6:.2f} | - |'
    ]
    for run in results['runs']:
        lines.append(f'| {STUDENT_NAMES[run["student"]]} | {METHOD_NAMES[run["method"]]} | '
                     f'{run["top1"]:.2f} | {run["params"] / 1e6:.2f} | {run["wall_s"]:.0f} |')
    with open(paths['md'], 'w') as f:
        f.write('\n'.join(lines) + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    students = sorted({r['student'] for r in results['runs']})
    fig, axes = plt.subplots(1, max(1, len(students)), figsize=(6 * max(1, len(students)), 4),
                             squeeze=False)
    for ax, student in zip(axes[0], students):
        for run in results['runs']:
            if run['student'] == student and run['curve']:
                steps, accs = zip(*run['curve'])
                ax.plot(steps, accs, marker='o', label=METHOD_NAMES[run['method']])
        ax.axhline(teacher['top1'], color='k', linestyle='--', label='teacher')
        ax.set_title(STUDENT_NAMES[student])
        ax.set_xlabel('training step')
        ax.set_ylabel(f'top-1 (%), first {results["setting"]["curve_size"]} test images')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths['png'], dpi=100)
    plt.close(fig)
    return paths


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)  # before the heavy imports: bad options fail at once
    import torch

    import mmscalekd  # noqa: F401  (compat fixes before mmpretrain is imported)
    from mmscalekd.utils import register_all_modules
    torch.set_num_threads(max(1, args.threads))
    register_all_modules()
    os.chdir(ROOT) if not osp.isabs(args.work_dir) else None
    ensure_data(args.data_root)
    start = time.perf_counter()
    ensure_teacher(args)
    teacher = evaluate_teacher(args)
    print(f'[demo] teacher top-1 {teacher["top1"]:.2f} %', flush=True)
    runs = []
    jobs = [(s, m) for s in args.students for m in args.methods]
    for i, (student, method) in enumerate(jobs, 1):
        print(f'[demo] run {i}/{len(jobs)}: {METHOD_NAMES[method]} -> {STUDENT_NAMES[student]}',
              flush=True)
        runs.append(train_one(student, method, args))
        print(f'[demo]   top-1 {runs[-1]["top1"]:.2f} % in {runs[-1]["wall_s"]:.0f} s', flush=True)
    results = dict(
        setting=dict(labels=args.labels, pool=args.pool, val_size=args.val_size,
                     curve_size=args.curve_size, seed=args.seed,
                     iters=runs[0]['iters'] if runs else None, quick=args.quick,
                     threads=args.threads),
        teacher=teacher, runs=runs, wall_s=round(time.perf_counter() - start, 1))
    paths = write_results(copy.deepcopy(results), args)
    with open(paths['md']) as f:
        print('\n' + f.read())
    print(f'[demo] done in {results["wall_s"]:.0f} s. Table: {paths["md"]}  JSON: {paths["json"]}  '
          f'curves: {paths["png"]}', flush=True)
    return results


if __name__ == '__main__':
    main()
