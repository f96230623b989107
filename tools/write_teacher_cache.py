"""Write the teacher cache of a logit-KD / SSLD training config (``docs/teacher_cache.md``).

Runs the config's frozen teacher over ``--epochs`` epochs of the config's seeded views and
stores, per sample and epoch, the teacher's top-k probabilities (fp16 by default) and the view's
fingerprint, in shards with a manifest. Training with the same config then replays it without
building the teacher.

Examples:
    python tools/write_teacher_cache.py CONFIG --epochs 300 --topk 10
    python -m torch.distributed.run --nproc_per_node 8 tools/write_teacher_cache.py CONFIG \\
        --epochs 300 --launcher pytorch
    srun -p PARTITION -n 32 --ntasks-per-node 8 python tools/write_teacher_cache.py CONFIG \\
        --epochs 300 --launcher slurm

Running it again finishes an interrupted cache (complete shards are kept) or extends a cache to
more epochs; a folder holding another config's cache is refused. ``--from-cache SRC`` derives a
smaller cache (fewer classes, or fp16) from an existing one without running the teacher:

    python tools/write_teacher_cache.py CONFIG --from-cache work_dirs/cache_all_fp32 --topk 5 \
        --out work_dirs/cache_top5
"""
# isort: off
import os.path as _osp
import sys as _sys

# Run from a checkout without installing: put the repository root on the path.
_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.abspath(__file__))))
# isort: on
import argparse
import os
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction

from mmscalekd.teacher_cache.manifest import TeacherCacheError
from mmscalekd.teacher_cache.writer import (
    DEFAULT_SHARD_SIZE,
    DEFAULT_TOPK,
    derive_cache,
    write_teacher_cache,
)
from mmscalekd.utils import register_all_modules
from mmscalekd.utils.launch import (
    LAUNCHERS,
    LaunchError,
    check_launch_env,
    init_cpu_distributed,
    shutdown_distributed,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write the teacher-output cache of a logit KD '
                                     '/ SSLD config')
    parser.add_argument('config', help='the training config (its teacher, data preprocessor '
                        'and TeacherCacheDataset)')
    parser.add_argument('--out', help="cache folder; defaults to the TeacherCacheDataset's "
                        'cache_dir')
    parser.add_argument('--epochs', type=int, default=1,
                        help='data epochs of views to write (default 1)')
    parser.add_argument('--topk', default=str(DEFAULT_TOPK),
                        help=f"classes kept per sample, or 'all' (default {DEFAULT_TOPK})")
    parser.add_argument('--dtype', choices=('float16', 'float32'), default='float16',
                        help='precision of the stored values (default float16)')
    parser.add_argument('--batch-size', type=int, help='teacher batch per process (default: '
                        'the train batch size)')
    parser.add_argument('--num-workers', type=int, help='dataloader workers (default: the '
                        "train dataloader's)")
    parser.add_argument('--shard-size', type=int, default=DEFAULT_SHARD_SIZE,
                        help=f'samples per shard file (default {DEFAULT_SHARD_SIZE})')
    parser.add_argument('--amp', choices=('float16', 'bfloat16'),
                        help='run the teacher under autocast (as --amp training would; CUDA)')
    parser.add_argument('--device', help='default: cuda:LOCAL_RANK with CUDA, else cpu')
    parser.add_argument('--from-cache', metavar='SRC',
                        help='derive the cache from the cache in SRC (same config; fewer '
                        'classes or fp16) instead of running the teacher')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, exactly as given to tools/train.py')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='job launcher: none (one process), pytorch (torchrun), slurm, mpi')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not _osp.isfile(args.config):
        parser.error(f'config file {args.config!r} does not exist')
    if args.topk == 'all':
        args.topk = None
    else:
        try:
            args.topk = int(args.topk)
        except ValueError:
            parser.error(f"--topk must be a positive int or 'all', got {args.topk!r}")
    for name in ('epochs', 'batch_size', 'shard_size'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    if args.topk is not None and args.topk < 1:
        parser.error(f'--topk must be >= 1, got {args.topk}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def _init_distributed(launcher: str, backend: str) -> None:
    if launcher == 'none':
        return
    import torch.distributed as dist
    init_cpu_distributed(launcher, backend)
    if not dist.is_initialized():
        from mmengine.dist import init_dist
        init_dist(launcher, backend=backend)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        check_launch_env(args.launcher)
    except LaunchError as err:
        sys.exit(f'tools/write_teacher_cache.py: error: {err}')
    register_all_modules()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.from_cache is not None:
        if args.launcher != 'none':
            sys.exit('tools/write_teacher_cache.py: error: --from-cache runs in one process '
                     '(it reads and writes files only); drop --launcher')
        try:
            m = derive_cache(cfg, args.from_cache, out_dir=args.out, topk=args.topk,
                             dtype=args.dtype)
        except TeacherCacheError as err:
            sys.exit(f'tools/write_teacher_cache.py: error: {err}')
        print(f'{m.root}: {m.epochs} epoch(s) x {m.dataset_length} samples, top-{m.topk} of '
              f'{m.num_classes} in {m.dtype} ({m.record_bytes} B per sample and epoch), derived '
              f'from {args.from_cache}')
        return
    import torch
    backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'nccl')
    if not torch.cuda.is_available():
        backend = 'gloo'
    _init_distributed(args.launcher, backend)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmscalekd-cache', log_level='INFO')
    try:
        result = write_teacher_cache(cfg, out_dir=args.out, epochs=args.epochs, topk=args.topk,
                                     dtype=args.dtype, batch_size=args.batch_size,
                                     num_workers=args.num_workers, shard_size=args.shard_size,
                                     device=args.device, amp=args.amp)
    except TeacherCacheError as err:
        sys.exit(f'tools/write_teacher_cache.py: error: {err}')
    if result.manifest is not None:
        m = result.manifest
        print(f'{result.root}: {m.epochs} epoch(s) x {m.dataset_length} samples, top-{m.topk} '
              f'of {m.num_classes} in {m.dtype} ({m.record_bytes} B per sample and epoch); '
              f'this process wrote {result.samples_written} samples in {result.seconds:.1f} s '
              f'({result.samples_per_second:.1f} samples/s), kept {result.shards_skipped} '
              'shard(s) already written')
    shutdown_distributed(args.launcher)


if __name__ == '__main__':
    main()
