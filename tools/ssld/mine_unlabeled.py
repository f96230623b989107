"""Mine unlabeled images for SSLD: teacher top-k per class, minus validation near-duplicates.

Usage::

    # one process
    python tools/ssld/mine_unlabeled.py CONFIG [--checkpoint TEACHER.pth] \\
        --pool data/in22k --pool-list data/in22k/list.txt --val data/imagenet/val \\
        --topk 4000 --out data/ssld_mined
    # 8 GPUs of one node (torchrun), or several nodes with NNODES/NODE_RANK/MASTER_ADDR
    bash tools/ssld/dist_mine.sh CONFIG 8 --pool ... --val ... --topk 4000 --out ...
    # slurm, one task per GPU
    GPUS=32 bash tools/ssld/slurm_mine.sh PARTITION JOB CONFIG --pool ... --out ...

``CONFIG`` is a distiller config (its ``teacher`` scores, as in training) or a config whose
``model`` is a teacher adapter. Images go through the config's test pipeline and data
preprocessor, then the adapter's own normalisation and resolution. The run is resumable and
refuses to mix results made with another teacher, preprocessing or thresholds; see
:mod:`mmscalekd.ssld.mining` and ``configs/ssld/README.md``.
"""
# isort: off
import os.path as _osp
import sys as _sys

# Run from a checkout without installing: put the repository root on the path.
_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.dirname(_osp.abspath(__file__)))))
# isort: on
import argparse  # noqa: E402
import os.path as osp
import sys
from typing import Optional, Sequence

import torch
from mmengine.config import DictAction

from mmscalekd.ssld.mining import (
    DEDUP_MODES,
    PRECISIONS,
    MiningOptions,
    MiningStateError,
    TeacherScorer,
    init_distributed,
    mine,
)
from mmscalekd.utils.launch import LAUNCHERS, LaunchError, shutdown_distributed


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='distiller config (its teacher is used) or a config '
                        'whose model is a teacher adapter')
    parser.add_argument('--checkpoint', default=None,
                        help="teacher weights (replaces the config's teacher checkpoint)")
    parser.add_argument('--pool', required=True, help='folder of candidate images')
    parser.add_argument('--pool-list', default=None,
                        help='file list of the pool, relative to --pool (recommended for '
                        'large pools: every process reads it instead of scanning)')
    parser.add_argument('--val', required=True, help='validation folder to de-duplicate against')
    parser.add_argument('--val-list', default=None, help='file list of the val set (optional)')
    parser.add_argument('--topk', type=int, required=True, help='images kept per class')
    parser.add_argument('--out', required=True, help='output folder (resumable)')
    parser.add_argument('--batch-size', type=int, default=32, help='images per teacher forward')
    parser.add_argument('--workers', type=int, default=4, help='DataLoader workers per process')
    parser.add_argument('--device', default=None,
                        help='torch device; defaults to the local GPU (cuda:LOCAL_RANK) if any, '
                        'else cpu')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32',
                        help='teacher precision (fp16/bf16 autocast)')
    parser.add_argument('--save-every', type=int, default=20,
                        help='write a resumable part every N batches')
    parser.add_argument('--classes-per-image', type=int, default=10,
                        help='each image competes for its top-P classes (Yalniz et al.: 10)')
    parser.add_argument('--dedup', choices=DEDUP_MODES, default='phash')
    parser.add_argument('--phash-threshold', type=int, default=4,
                        help='duplicate if the pHash Hamming distance is <= this')
    parser.add_argument('--cosine-threshold', type=float, default=0.95,
                        help='duplicate if the teacher-feature cosine is >= this')
    parser.add_argument('--force', action='store_true',
                        help='replace parts and outputs in --out that were made with other '
                        'options or inputs (otherwise the run stops and says what differs)')
    parser.add_argument('--no-progress', action='store_true', help='no progress lines')
    parser.add_argument('--progress-interval', type=float, default=30.0,
                        help='seconds between progress lines')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='key=value overrides of the config')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='none (one process), pytorch (torchrun), slurm or mpi')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if not osp.isfile(args.config):
        sys.exit(f'tools/ssld/mine_unlabeled.py: error: config {args.config!r} does not exist')
    try:
        options = MiningOptions(
            pool=args.pool, val=args.val, out=args.out, topk=args.topk,
            pool_list=args.pool_list, val_list=args.val_list,
            classes_per_image=args.classes_per_image, dedup=args.dedup,
            phash_threshold=args.phash_threshold, cosine_threshold=args.cosine_threshold,
            batch_size=args.batch_size, num_workers=args.workers, save_every=args.save_every,
            force=args.force, progress=not args.no_progress,
            progress_interval_s=args.progress_interval)
    except (ValueError, TypeError, OSError) as err:
        sys.exit(f'tools/ssld/mine_unlabeled.py: error: {err}')
    try:
        dist = init_distributed(args.launcher)
    except LaunchError as err:
        sys.exit(f'tools/ssld/mine_unlabeled.py: error: {err} To mine with several processes: '
                 '`bash tools/ssld/dist_mine.sh CONFIG NUM_PROCS ARGS` (torchrun) or '
                 '`bash tools/ssld/slurm_mine.sh PARTITION JOB CONFIG ARGS` (slurm).')
    device = args.device
    if device is None:
        device = f'cuda:{dist.local_rank}' if torch.cuda.is_available() else 'cpu'
    if str(device).startswith('cuda'):
        torch.cuda.set_device(torch.device(device))
    scorer = TeacherScorer.from_config(args.config, args.checkpoint, device=device,
                                       precision=args.precision, cfg_options=args.cfg_options)
    try:
        summary = mine(scorer, options, dist)
    except MiningStateError as err:
        sys.exit(f'tools/ssld/mine_unlabeled.py: error: {err}')
    shutdown_distributed(args.launcher)
    return summary


if __name__ == '__main__':
    main()
