"""Evaluate a checkpoint: a distiller's (with its distiller config) or a plain student's.

With a distiller config (a ``model`` that has ``student`` and ``teacher`` entries) only the
student is built and evaluated: the distiller's ``predict`` delegates to its student, so the
numbers are the same, and the teacher is neither built nor downloaded. The checkpoint may be a
training checkpoint of the distiller (its ``student.*`` weights are used; ``teacher.*`` and
``connectors.*`` are ignored) or a student checkpoint made by
``tools/model_converters/extract_student.py``; either works with either config.

``--out`` is written atomically (a temporary file next to it, renamed when complete) and
an existing file is replaced only with ``--force``; both are checked before anything is
built, as are the config (its syntax, its kind, the top-level keys of ``--cfg-options``)
and the checkpoint path.

Examples:
    python tools/test.py configs/scalekd/<distiller config>.py work_dirs/run1/epoch_300.pth
    python tools/test.py <student config>.py student.pth --out preds.pkl
    bash tools/dist_test.sh CONFIG CKPT 8
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
from typing import Dict, List, Optional

import mmengine
import torch
from mmengine.config import ConfigDict
from mmengine.dist import is_main_process
from mmengine.evaluator import DumpResults
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

import mmscalekd.utils.tool_checks as checks
from mmscalekd.registry import UnknownTypeError, check_model_config
from mmscalekd.utils import adapt_cfg_to_device, register_all_modules
from mmscalekd.utils.atomic_io import AtomicOutput, check_output
from mmscalekd.utils.launch import (
    LAUNCHERS,
    LaunchError,
    check_launch_env,
    init_cpu_distributed_from_cfg,
    shutdown_distributed,
)

# What MMEngine's DumpResults and mmengine.dump accept for --out.
PRED_EXTENSIONS = ('.pkl', '.pickle')
METRIC_EXTENSIONS = ('.json', '.yaml', '.yml', '.pkl', '.pickle')
# The entries tools/test.py uses (Runner.test needs the loop, the data and the metric).
TEST_NEEDS = ('model', 'test_dataloader', 'test_cfg', 'test_evaluator')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a checkpoint with mmscalekd')
    parser.add_argument('config', help='distiller config or student (classifier) config')
    parser.add_argument('checkpoint', help='distiller training checkpoint or student checkpoint')
    parser.add_argument('--work-dir', help='where the metrics log goes; defaults to the config '
                        'value, else work_dirs/<config name>')
    parser.add_argument('--out', help='file to dump to (.pkl for predictions; .json/.yaml/.pkl '
                        'for metrics with --out-item metrics)')
    parser.add_argument('--out-item', choices=['pred', 'metrics'], default='pred',
                        help='what --out holds. Defaults to pred')
    parser.add_argument('--force', action='store_true',
                        help='replace --out if it exists (atomically: the old file stays until '
                        'the new one is complete)')
    parser.add_argument('--cfg-options', nargs='+', action=checks.CfgOptionsAction,
                        help='override config entries, e.g. test_dataloader.batch_size=64')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='job launcher: none (one process), pytorch (torchrun), slurm, mpi')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        checks.check_input_file(args.config, 'config file')
        if '://' not in args.checkpoint:
            checks.check_input_file(args.checkpoint, 'checkpoint')
        if args.out:
            check_output(args.out, args.force, what='--out')
            if osp.exists(args.out) and '://' not in args.checkpoint \
                    and osp.samefile(args.out, args.checkpoint):
                parser.error(f'--out {args.out!r} is the checkpoint under test; give another name')
    except OSError as err:
        parser.error(str(err))
    if args.out and args.out_item == 'pred' and not args.out.endswith(PRED_EXTENSIONS):
        parser.error(f'--out {args.out!r}: predictions are dumped as pickle, use a .pkl name')
    if args.out and args.out_item == 'metrics' and not args.out.endswith(METRIC_EXTENSIONS):
        parser.error(f'--out {args.out!r}: metrics are dumped as {"/".join(METRIC_EXTENSIONS)} '
                     '(chosen by the extension); use one of these')
    if args.out_item == 'metrics' and not args.out:
        parser.error('--out-item metrics needs --out FILE (.json, .yaml or .pkl)')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def student_model_cfg(model_cfg: ConfigDict,
                      default_preprocessor: Optional[dict] = None) -> ConfigDict:
    """The model to evaluate: the student of a distiller config, else the model itself.

    The distiller's data preprocessor (the one its ``test_step`` applies before
    delegating to the student) replaces the student's own: the distiller's
    ``data_preprocessor`` entry, else the config's top-level ``data_preprocessor``
    (which the Runner would have given the distiller).
    """
    if not ('student' in model_cfg and 'teacher' in model_cfg):
        return model_cfg
    student = ConfigDict(model_cfg['student'])
    preprocessor = model_cfg.get('data_preprocessor') or default_preprocessor
    if preprocessor is not None:
        student['data_preprocessor'] = preprocessor
    # Weights come from the checkpoint; never fetch the student's pretrained init.
    student.pop('init_cfg', None)
    return student


def student_state_dict(checkpoint: dict) -> Dict[str, torch.Tensor]:
    """The student's weights from a distiller or student checkpoint (prefixes stripped)."""
    state = checkpoint.get('state_dict', checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    if any(k.startswith('student.') for k in state):
        state = {k[len('student.'):]: v for k, v in state.items() if k.startswith('student.')}
    return state


def load_student(model: torch.nn.Module, filename: str) -> None:
    """Load ``filename`` into ``model``; refuse when a weight is missing or misshapen.

    Evaluating a model whose weights silently stayed at their initial values would
    report chance accuracy, so every entry of the model's state dict must come from
    the checkpoint.
    """
    checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    state = student_state_dict(checkpoint)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    misshapen = [f'{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}'
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or misshapen:
        raise ValueError(
            f'{filename} does not match the model to evaluate: {len(missing)} weight(s) '
            f'missing (e.g. {missing[:3]}), {len(misshapen)} of another shape '
            f'(checkpoint vs model, e.g. {misshapen[:3]}). Is it the checkpoint of this '
            f'config? It holds e.g. {list(state)[:3]}.')
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        mmengine.MMLogger.get_current_instance().warning(
            f'Ignored {len(unexpected)} checkpoint entries the model does not have, e.g. '
            f'{unexpected[:5]}')
    model.load_state_dict({k: state[k] for k in expected}, strict=True)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    try:
        check_launch_env(args.launcher)
    except LaunchError as err:
        sys.exit(f'tools/test.py: error: {err}')
    register_all_modules()

    try:  # the config's syntax, its override keys and its kind, before anything is built
        cfg = checks.load_config(args.config)
        checks.check_cfg_options(args.cfg_options, cfg)
    except (checks.ToolInputError, OSError) as err:
        sys.exit(f'tools/test.py: error: {err}')
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    try:
        checks.check_config_kind(cfg, args.config, TEST_NEEDS, 'tools/test.py')
    except checks.ToolInputError as err:
        sys.exit(f'tools/test.py: error: {err}')
    is_distiller = 'student' in cfg.model and 'teacher' in cfg.model
    cfg.model = student_model_cfg(cfg.model, cfg.get('data_preprocessor'))
    try:  # only the student is built: a misspelt type in it fails here, with suggestions
        check_model_config(cfg, 'model.student' if is_distiller else 'model')
    except UnknownTypeError as err:
        sys.exit(f'tools/test.py: error: {err}')
    try:  # before the model is built: the data the evaluation reads exists
        checks.check_data_roots(cfg, ('test_dataloader', ))
    except checks.ToolInputError as err:
        sys.exit(f'tools/test.py: error: {err}')
    cfg.load_from = None  # loaded below, with the student prefix handled
    cfg.resume = False
    cfg = adapt_cfg_to_device(cfg)
    init_cpu_distributed_from_cfg(args.launcher, cfg)  # gloo without CUDA, any launcher

    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    try:
        load_student(model, args.checkpoint)
    except (ValueError, RuntimeError, pickle.UnpicklingError) as err:  # wrong / corrupt file
        sys.exit(f'tools/test.py: error: {err}')
    runner._has_loaded = True  # keep Runner.test() from loading anything else

    # --out is written to a temporary file next to it and renamed once complete (rank 0).
    out = AtomicOutput(args.out, force=args.force, what='--out') if args.out else None
    if out is not None and args.out_item == 'pred':
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out.tmp))
    try:
        metrics = runner.test()
    except BaseException:
        if out is not None:
            out.discard()
        raise
    if out is not None and is_main_process():
        with out:
            if args.out_item == 'metrics':
                mmengine.dump(metrics, out.tmp)
    shutdown_distributed(args.launcher)
    return metrics


if __name__ == '__main__':
    main()
