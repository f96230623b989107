"""Turn a ScaleKD distiller checkpoint into a plain student checkpoint.

The distiller's state dict holds ``student.*``, ``connectors.*`` and ``teacher.*``
weights, and a training checkpoint adds the optimizer, the message hub and the
schedulers. This keeps the student only, with the ``student.`` prefix removed, in
the layout of an mmpretrain ``ImageClassifier`` checkpoint
(``{'state_dict': ..., 'meta': ...}``), which ``mmpretrain.get_model`` /
``init_model`` and ``tools/test.py`` load. With ``--backbone-only`` only the
``backbone.*`` weights are kept, *with* their ``backbone.`` prefix, for a detector
or segmentor: ``init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.')``.

The input is read with ``weights_only=True`` (:func:`mmscalekd.utils.safe_torch_load`),
so a checkpoint that would run code when unpickled is refused. OUT is written atomically
(:mod:`mmscalekd.utils.atomic_io`): a temporary file in OUT's folder, fsynced and renamed,
so a killed run never leaves a partial OUT. An existing OUT is replaced only with
``--force``.

Example:
    python tools/model_converters/extract_student.py work_dirs/run1/epoch_300.pth \
        student_res50.pth
"""
import argparse
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmscalekd.utils import safe_torch_load  # noqa: E402
from mmscalekd.utils.atomic_io import AtomicOutput, check_output  # noqa: E402
from mmscalekd.utils.checkpoint import CorruptCheckpointError, UnsafeCheckpointError  # noqa: E402
from mmscalekd.utils.tool_checks import check_input_file  # noqa: E402

STUDENT_PREFIX = 'student.'
# Meta entries worth keeping: what the weights were trained on and how far. The
# distiller's own config (meta['cfg']) would describe the wrong model, so it goes.
KEPT_META = ('dataset_meta', 'epoch', 'iter', 'seed', 'experiment_name', 'mmengine_version')


def _prefix_counts(keys) -> str:
    # student.* keys are told apart by their module (student.head), the rest by their root.
    counts = Counter('.'.join(key.split('.')[:2 if key.startswith(STUDENT_PREFIX) else 1])
                     for key in keys)
    return ', '.join(f'{name} {n}' for name, n in sorted(counts.items())) or 'nothing'


def extract_student(checkpoint: dict, backbone_only: bool = False,
                    source: Optional[str] = None) -> Tuple[dict, Dict[str, List[str]]]:
    """Build the student checkpoint from a loaded distiller checkpoint.

    Args:
        checkpoint (dict): A distiller training checkpoint, or its bare state dict.
        backbone_only (bool): Keep only ``backbone.*``. Defaults to False.
        source (str, optional): Name of the input file, recorded in the meta.

    Returns:
        tuple: The new checkpoint ``{'state_dict', 'meta'}`` and a report
        ``{'kept': [...keys...], 'dropped': [...keys...], 'dropped_entries': [...]}``.

    Raises:
        ValueError: The checkpoint has no ``student.`` weights, or none under
            ``student.backbone.`` with ``backbone_only``.
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f'expected a checkpoint dict, got {type(checkpoint).__name__}')
    has_state = isinstance(checkpoint.get('state_dict'), dict)
    state = checkpoint['state_dict'] if has_state else checkpoint
    # A checkpoint saved from a DDP-wrapped model carries 'module.' in front.
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    student = {k[len(STUDENT_PREFIX):]: v for k, v in state.items()
               if k.startswith(STUDENT_PREFIX)}
    if not student:
        raise ValueError(
            f'{source or "the checkpoint"} has no "{STUDENT_PREFIX}" weights, so it is not a '
            f'distiller checkpoint (its weights start with: {_prefix_counts(state)}). '
            'A plain classifier checkpoint needs no extraction; use it as it is.')
    kept = {k: v for k, v in student.items() if not backbone_only or k.startswith('backbone.')}
    if not kept:
        raise ValueError(f'{source or "the checkpoint"} has no "{STUDENT_PREFIX}backbone." '
                         f'weights (the student has: {_prefix_counts(student)})')
    kept_full = {STUDENT_PREFIX + k for k in kept}
    meta = {k: v for k, v in (checkpoint.get('meta') or {}).items() if k in KEPT_META}
    meta['converted_from'] = osp.basename(source) if source else None
    meta['converter'] = 'mmscalekd extract_student' + (' --backbone-only' * backbone_only)
    report = {
        'kept': sorted(kept),
        'dropped': sorted(k for k in state if k not in kept_full),
        'dropped_entries': sorted(k for k in checkpoint
                                  if has_state and k not in ('state_dict', 'meta')),
    }
    return {'state_dict': kept, 'meta': meta}, report


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description='Extract the student from a distiller '
                                     'checkpoint (drops teacher, connectors, training state)')
    parser.add_argument('src', metavar='IN', help='distiller checkpoint (.pth)')
    parser.add_argument('dst', metavar='OUT', help='student checkpoint to write (.pth)')
    parser.add_argument('--backbone-only', action='store_true',
                        help='keep only backbone.* (prefix kept) for mmdet / mmseg Pretrained')
    parser.add_argument('--force', action='store_true',
                        help='replace OUT if it exists (atomically: the old file stays until '
                        'the new one is complete)')
    args = parser.parse_args(argv)
    try:  # every argument is checked before the (possibly large) input is read
        check_input_file(args.src, 'input checkpoint IN')
        if osp.exists(args.dst) and osp.samefile(args.src, args.dst):
            parser.error(f'OUT {args.dst!r} is the input file; give another name (the input '
                         'is never modified)')
        check_output(args.dst, args.force, what='OUT')
    except OSError as err:
        parser.error(str(err))

    try:
        new, report = extract_student(safe_torch_load(args.src, map_location='cpu'),
                                      args.backbone_only, source=args.src)
    except (ValueError, CorruptCheckpointError, UnsafeCheckpointError) as err:
        sys.exit(f'extract_student: error: {err}')
    try:
        with AtomicOutput(args.dst, force=args.force, what='OUT') as out:
            torch.save(new, out.tmp)
    except OSError as err:  # a full disk, a vanished folder: nothing half-written stays
        state = 'is unchanged' if osp.exists(args.dst) else 'was not created'
        sys.exit(f'extract_student: error: cannot write {args.dst!r} ({err}); it {state}')

    print(f'kept    {len(report["kept"])} tensors: {_prefix_counts(report["kept"])}')
    print(f'dropped {len(report["dropped"])} tensors: {_prefix_counts(report["dropped"])}')
    if report['dropped_entries']:
        print(f'dropped checkpoint entries: {", ".join(report["dropped_entries"])}')
    for stale in out.stale_removed:
        print(f'removed {stale} (left by a killed earlier run)')
    print(f'saved {args.dst}')


if __name__ == '__main__':
    main()
