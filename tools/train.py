"""Train a model (a ScaleKD distiller or a plain mmpretrain classifier) with MMEngine's Runner.

Examples:
    python tools/train.py configs/scalekd/<config>.py --work-dir work_dirs/run1
    python tools/train.py CONFIG --resume                # continue from the latest checkpoint
    bash tools/dist_train.sh CONFIG 8                    # 8 processes (GPUs, or gloo on CPU)

Before anything is built the tool checks the config (its syntax, with file and line; that it
is a complete mmscalekd training config), the top-level keys of ``--cfg-options``, the paths
given, and with ``--resume`` that the checkpoint is a training checkpoint of this model.
"""
# isort: off
import os.path as _osp
import sys as _sys

# Run from a checkout without installing: put the repository root on the path.
_sys.path.insert(0, _osp.dirname(_osp.dirname(_osp.abspath(__file__))))
# isort: on
import argparse
import os
import os.path as osp
import pickle
import sys
from typing import List, Optional

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmscalekd.utils.tool_checks as checks
from mmscalekd.engine import NonFiniteLossError
from mmscalekd.models.distillers import TeacherMismatchError
from mmscalekd.registry import UnknownTypeError, check_model_config
from mmscalekd.utils import adapt_cfg_to_device, register_all_modules
from mmscalekd.utils.launch import (
    LAUNCHERS,
    LaunchError,
    check_launch_env,
    init_cpu_distributed_from_cfg,
    shutdown_distributed,
)
from mmscalekd.utils.resume_check import ResumeCheckpointError, check_runner_resume

# The entries a training run needs (mmengine Runner.train builds its loop, data and optimizer).
TRAIN_NEEDS = ('model', 'train_dataloader', 'train_cfg', 'optim_wrapper')
# The default hooks MMEngine's Runner knows by name (mmengine/runner/runner.py).
MMENGINE_HOOKS = ('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                  'checkpoint')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model with mmscalekd')
    parser.add_argument('config', help='config file (text-style OpenMMLab config)')
    parser.add_argument('--work-dir', help='where logs and checkpoints go; defaults to the '
                        'config value, else work_dirs/<config name>')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                        help='resume from CKPT; without a value, from the latest checkpoint '
                        'in the work dir (a fresh start if there is none)')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (AmpOptimWrapper; needs CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by (total batch size) / '
                        'auto_scale_lr.base_batch_size of the config')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip validation during training')
    parser.add_argument('--no-pin-memory', action='store_true',
                        help='do not pin dataloader memory')
    parser.add_argument('--no-persistent-workers', action='store_true',
                        help='do not keep dataloader workers alive between epochs')
    parser.add_argument('--cfg-options', nargs='+', action=checks.CfgOptionsAction,
                        help='override config entries, e.g. train_cfg.max_iters=10 '
                        'optim_wrapper.optimizer.lr=0.01 (lists as key="[a,b]")')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='job launcher: none (one process), pytorch (torchrun), slurm, mpi')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or --local_rank.
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        checks.check_input_file(args.config, 'config file')
        if args.resume not in (None, 'auto') and '://' not in args.resume:
            checks.check_input_file(args.resume, '--resume checkpoint')
    except OSError as err:
        hint = (' (give a .pth file, or --resume alone to continue from the latest one in '
                'the work dir)' if '--resume' in str(err) else '')
        parser.error(f'{err}{hint}')
    if args.work_dir is not None and osp.exists(args.work_dir) and not osp.isdir(args.work_dir):
        parser.error(f'--work-dir {args.work_dir!r} is a file; give a folder (it is created '
                     'if missing)')
    if args.resume not in (None, 'auto') and args.cfg_options \
            and args.cfg_options.get('load_from') not in (None, args.resume):
        parser.error(f'--resume {args.resume!r} and --cfg-options '
                     f'load_from={args.cfg_options["load_from"]!r} name different checkpoints; '
                     'give one: --resume CKPT continues a run, load_from=CKPT (without '
                     '--resume) starts a new run from its weights')
    if args.amp and not torch.cuda.is_available():
        parser.error('--amp needs CUDA (MMEngine\'s AmpOptimWrapper uses torch.cuda.amp); '
                     'drop --amp on this machine')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to ``cfg`` (command line wins, --cfg-options last)."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None

    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume

    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise ValueError('--auto-scale-lr needs `auto_scale_lr = dict(base_batch_size=N)` '
                             f'in the config; {args.config} has none')
        cfg.auto_scale_lr.enable = True

    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if loader is None:
            continue
        # Pinning only helps host->GPU copies; persistent workers need workers.
        loader.setdefault('pin_memory', torch.cuda.is_available() and not args.no_pin_memory)
        loader.setdefault('persistent_workers', loader.get('num_workers', 0) > 0
                          and not args.no_persistent_workers)
        if args.no_pin_memory:
            loader.pin_memory = False
        if args.no_persistent_workers:
            loader.persistent_workers = False

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # `default_hooks.<name>=None` removes a hook. MMEngine's Runner accepts that only for its own
    # names (mmengine/runner/runner.py, register_default_hooks; a bare assert otherwise), so
    # ours (non_finite) are dropped here; None for MMEngine's names stays for the Runner.
    hooks = cfg.get('default_hooks')
    if hooks:
        for name in [n for n, hook in hooks.items() if hook is None and n not in MMENGINE_HOOKS]:
            hooks.pop(name)
    return cfg


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        check_launch_env(args.launcher)
    except LaunchError as err:
        sys.exit(f'tools/train.py: error: {err}')
    register_all_modules()

    try:  # the config's syntax, its override keys and its kind, before anything is built
        cfg = checks.load_config(args.config)
        checks.check_cfg_options(args.cfg_options, cfg)
        cfg = merge_args(cfg, args)
        checks.check_config_kind(cfg, args.config, TRAIN_NEEDS, 'tools/train.py')
    except (ValueError, OSError) as err:  # ToolInputError is a ValueError
        sys.exit(f'tools/train.py: error: {err}')
    try:
        check_model_config(cfg)  # a misspelt nested type fails here, with suggestions
    except UnknownTypeError as err:
        sys.exit(f'tools/train.py: error: {err}')
    try:  # before the model (and a teacher download): the data the run reads exists
        checks.check_data_roots(cfg, ('train_dataloader', 'val_dataloader'))
    except checks.ToolInputError as err:
        sys.exit(f'tools/train.py: error: {err}')
    cfg = adapt_cfg_to_device(cfg)
    init_cpu_distributed_from_cfg(args.launcher, cfg)  # gloo without CUDA, any launcher

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    try:  # a weights-only file or another model's checkpoint fails here, saying so
        check_runner_resume(runner, cfg)
    except (ResumeCheckpointError, RuntimeError, pickle.UnpicklingError) as err:
        sys.exit(f'tools/train.py: error: {err}')
    try:
        runner.train()
    except (NonFiniteLossError, TeacherMismatchError) as err:  # a clear line, exit status 1
        sys.exit(f'tools/train.py: error: {err}')
    shutdown_distributed(args.launcher)


if __name__ == '__main__':
    main()
