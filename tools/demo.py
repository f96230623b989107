"""The main job: distil a small ViT teacher into CNN and MLP students, on CPU.

Runs the real configs (``configs/demo/``), the real ``ScaleKDDistiller`` and MMEngine's Runner in a
label-scarce setting: each student is trained with (a) labels only, (b) logit KD, (c) ScaleKD
(CAP + DFM + TPP + KD) and (d) SSLD (label-free, all images), for the same number of steps and
several seeds, in parallel processes of one thread each. It writes a table (mean ± std over the
seeds, paired differences, teacher and parameters), a JSON record and the accuracy curves with
their seed bands into the work dir (see ``mmscalekd/demo/``).

    python tools/demo.py                       # Fashion-MNIST, the full demo
    python tools/demo.py --quick               # a smoke run (used by the tests)
    python tools/demo.py --data-root DIR       # another image set: IDX files or class folders

The teacher must be trained on the demo's data: the committed
``checkpoints/demo/vit-teacher_fashion-mnist.pth`` is used when the data fingerprint in its meta
matches; otherwise the demo trains one (``configs/demo/vit-teacher_fashion-mnist.py``) into
``<work-dir>/teachers/`` and reuses it next time.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Any, Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

# The choices, here so that bad options fail before anything heavy is imported
# (tests/test_demo.py checks that they equal mmscalekd.demo.configs').
STUDENTS = ('cnn', 'mlp')
METHODS = ('labels', 'kd', 'scalekd', 'ssld')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='tools/demo.py', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[1:]))
    data = parser.add_argument_group('data')
    data.add_argument('--data-root', default=osp.join(ROOT, 'data', 'fashion_mnist'),
                      help='the image set: a folder with IDX files (train-images-idx3-ubyte, '
                      't10k-..., optionally .gz) or with one sub-folder of images per class '
                      '(optionally inside train/ and test/; without them 20%% of every class '
                      'is the test split). Default: Fashion-MNIST in data/fashion_mnist')
    data.add_argument('--labels', type=int, default=None,
                      help='labeled training images, drawn per class from the pool (default: '
                      '2000 or a tenth of the training images, whichever is fewer; quick: 100)')
    data.add_argument('--pool', type=int, default=None,
                      help='training images the distillation methods see without labels, '
                      'drawn per class (default: all; quick: 400)')
    data.add_argument('--val-size', type=int, default=None,
                      help='test images of the final evaluation in the table, drawn per class '
                      '(default: all test images; quick: 200)')
    data.add_argument('--curve-size', type=int, default=None,
                      help='test images of the evaluations during training, for the curves; a '
                      'subset of the --val-size images (default: 1000, at most --val-size)')
    runs = parser.add_argument_group('runs')
    runs.add_argument('--students', nargs='+', choices=STUDENTS, default=list(STUDENTS))
    runs.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    runs.add_argument('--iters', type=int, default=None,
                      help='optimizer steps per run (default: the configs\' max_iters; quick: 6)')
    runs.add_argument('--seeds', type=int, default=None,
                      help='seeds per (student, method): mean ± std in the table (default 2; '
                      'quick: 1)')
    runs.add_argument('--seed', type=int, default=0, help='the first seed (default 0)')
    runs.add_argument('--jobs', type=int, default=None,
                      help='parallel runs, one process of one thread each (default: the number '
                      'of CPU cores); the numbers do not depend on it')
    runs.add_argument('--quick', action='store_true',
                      help='smoke run: few labels, a small pool, 6 steps, one seed')
    teacher = parser.add_argument_group('teacher')
    teacher.add_argument('--teacher-ckpt', default=None,
                         help='teacher checkpoint; refused unless its data fingerprint matches '
                         'the data; trained when missing (default: the committed Fashion-MNIST '
                         'teacher when it matches, else <work-dir>/teachers/<data>.pth)')
    teacher.add_argument('--retrain-teacher', action='store_true',
                         help='train a new teacher on the data (replacing --teacher-ckpt when '
                         'given, else into <work-dir>/teachers/)')
    teacher.add_argument('--teacher-iters', type=int, default=None,
                         help='step budget of a teacher training (default: 100 epochs, within '
                         '1000-6000 steps; quick: 20)')
    out = parser.add_argument_group('output')
    out.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'demo'),
                     help='where results, runs and trained teachers go (default: '
                     'work_dirs/demo)')
    out.add_argument('--force', action='store_true',
                     help='replace the results of an earlier run in the work dir (default: '
                     'they are moved to <work-dir>/previous/<time>/)')
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ('labels', 'pool', 'iters', 'val_size', 'curve_size', 'seeds', 'jobs',
                 'teacher_iters'):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f'--{name.replace("_", "-")} must be positive, got {value}')
    if args.seed < 0:
        parser.error(f'--seed must be >= 0, got {args.seed}')
    if args.labels is not None and args.pool is not None and args.labels > args.pool:
        parser.error(f'need --labels <= --pool (the labeled images are drawn from the pool), '
                     f'got {args.labels} and {args.pool}')
    if args.val_size is not None and args.curve_size is not None and \
            args.curve_size > args.val_size:
        parser.error(f'--curve-size must be <= --val-size ({args.val_size}), '
                     f'got {args.curve_size}')
    for name in ('data_root', 'work_dir', 'teacher_ckpt'):
        if getattr(args, name) is not None:
            setattr(args, name, osp.abspath(osp.expanduser(getattr(args, name))))
    return args


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)  # before the heavy imports: bad options fail at once
    from mmscalekd.demo import DemoOptionError, DemoSetting, TeacherMismatchError, run_demo
    from mmscalekd.demo.parallel import TaskFailed
    setting = DemoSetting(
        work_dir=args.work_dir, data_root=args.data_root, students=args.students,
        methods=args.methods, labels=args.labels, pool=args.pool, iters=args.iters,
        val_size=args.val_size, curve_size=args.curve_size, seeds=args.seeds, seed=args.seed,
        jobs=args.jobs, quick=args.quick, teacher_ckpt=args.teacher_ckpt,
        retrain_teacher=args.retrain_teacher, teacher_iters=args.teacher_iters,
        force=args.force)
    try:
        return run_demo(setting)
    except (DemoOptionError, TeacherMismatchError, FileNotFoundError) as err:
        build_parser().error(str(err))
    except TaskFailed as err:
        sys.exit(f'tools/demo.py: error: {err}')
    except KeyboardInterrupt:
        sys.exit('tools/demo.py: interrupted; the runs were stopped and no results were written '
                 '(the previous ones, if any, are in the work dir\'s previous/)')


if __name__ == '__main__':
    main()
