"""The demo's teacher: tied to its data by a fingerprint, trained to a budget with a plateau check.

A teacher checkpoint written here holds ``state_dict`` and ``meta``:

* ``meta['data_fingerprint']``: :meth:`mmscalekd.datasets.ImageSet.fingerprint` of the
  training split it was trained on (a content hash, the image count and shape, the class count).
  The demo refuses a teacher whose fingerprint differs from the data's.
* ``meta['recipe']``: config, step budget, held-out size, steps run, why training stopped, the
  held-out accuracy curve and the plateau check.
* ``meta['mean']``, ``meta['std']``: the normalisation it was trained with.
"""
from __future__ import annotations

import math
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmscalekd.datasets.image_set import describe_fingerprint

from .configs import ROOT, TEACHER_CKPT

#: Epochs of the teacher's step budget, and the bounds of the budget in steps (batch 128).
#: 12 epochs of the 60,000 Fashion-MNIST images gave 89.63 % (the previous demo teacher, measured
#: by us); on ~1,400 images 12 epochs (132 steps) gave 73 % and 100 epochs 97 %.
BUDGET_EPOCHS = 100
BUDGET_MIN_STEPS = 1000
BUDGET_MAX_STEPS = 6000
#: Evaluations on the held-out slice per budget (the plateau check's resolution).
EVALUATIONS = 20
#: The held-out slice: 10 % of the training images, at least 5 per class, at most 2,000.
HOLDOUT_SHARE = 0.1
HOLDOUT_MIN_PER_CLASS = 5
HOLDOUT_MAX = 2000
#: Training ran into its budget while still improving when the best held-out top-1 of the last
#: :data:`LAST_SHARE` of the steps beats the best before it by more than this (points). Our
#: choice. The window is the schedule's tail, where the cosine has brought the learning rate
#: below 6 % of its peak: a gain there means the budget was short, not the annealing at work
#: (a last-quarter window flagged the 6000-step Fashion-MNIST teacher, +1.2 points, whose curve
#: had flattened: +0.35 in its last 15 %).
STILL_IMPROVING_GAIN = 1.0
LAST_SHARE = 0.15
#: The teacher "clearly" beats the labels-only student by at least this (top-1 points). Our
#: choice; below it there is little for distillation to transfer.
TEACHER_MARGIN = 3.0
#: Steps of a teacher trained by ``--quick`` (a smoke run, not a useful teacher).
QUICK_STEPS = 20


class TeacherMismatchError(RuntimeError):
    """The teacher checkpoint was trained on other data than the demo's."""


def teacher_step_budget(num_images: int, batch_size: int = 128) -> int:
    """Optimizer steps for a teacher trained on ``num_images``: :data:`BUDGET_EPOCHS` epochs,
    clipped to [:data:`BUDGET_MIN_STEPS`, :data:`BUDGET_MAX_STEPS`].

    Small sets get many epochs (1,260 images: 1,000 steps, ~100 epochs), large ones a bounded
    CPU time (58,000 images: 6,000 steps, ~13 epochs).
    """
    if num_images < 1 or batch_size < 1:
        raise ValueError(f'need num_images >= 1 and batch_size >= 1, got {num_images}, '
                         f'{batch_size}')
    steps = math.ceil(BUDGET_EPOCHS * num_images / batch_size)
    return int(min(BUDGET_MAX_STEPS, max(BUDGET_MIN_STEPS, steps)))


def teacher_holdout_size(num_images: int, num_classes: int) -> int:
    """Size of the stratified held-out slice of the training split (model selection, plateau)."""
    size = min(HOLDOUT_MAX, max(HOLDOUT_MIN_PER_CLASS * num_classes,
                                int(round(HOLDOUT_SHARE * num_images))))
    if num_images - size < num_classes:
        raise ValueError(f'{num_images} training images of {num_classes} classes are too few to '
                         f'hold out {size} for the teacher and train on the rest')
    return size


def plateau_check(history: Sequence[Sequence[float]], budget: int) -> Dict[str, Any]:
    """Summarise the held-out curve: where the best was, why training stopped, still improving?

    Args:
        history (Sequence): ``(step, held-out top-1)`` pairs in step order.
        budget (int): The step budget (``max_iters``).

    Returns:
        dict: ``steps`` (last evaluated step), ``stopped`` (``'plateau'``: early stop before the
        budget, else ``'budget'``), ``best_step``, ``best_top1``, ``last_gain`` (best of the last
        :data:`LAST_SHARE` of the steps minus the best before) and ``still_improving`` (budget
        reached and ``last_gain`` above :data:`STILL_IMPROVING_GAIN`).
    """
    if not history:
        return dict(steps=0, stopped='budget', best_step=None, best_top1=None,
                    last_gain=None, still_improving=False)
    steps = [int(s) for s, _ in history]
    accs = [float(a) for _, a in history]
    best = max(range(len(accs)), key=lambda i: (accs[i], -steps[i]))
    stopped = 'plateau' if steps[-1] < budget else 'budget'
    cut = (1.0 - LAST_SHARE) * budget
    before = [a for s, a in zip(steps, accs) if s <= cut]
    after = [a for s, a in zip(steps, accs) if s > cut]
    gain = (max(after) - max(before)) if before and after else None
    return dict(steps=steps[-1], stopped=stopped, best_step=steps[best], best_top1=accs[best],
                last_gain=None if gain is None else round(gain, 2),
                still_improving=bool(stopped == 'budget' and gain is not None
                                     and gain > STILL_IMPROVING_GAIN))


def read_teacher_meta(path: str) -> Dict[str, Any]:
    """The ``meta`` of a teacher checkpoint (empty when it has none)."""
    from mmscalekd.utils import load_checkpoint_file
    ckpt = load_checkpoint_file(path, map_location='cpu')
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def fingerprint_mismatch(meta: Dict[str, Any], fingerprint: Dict[str, Any]) -> Optional[str]:
    """Why a teacher with ``meta`` does not fit data with ``fingerprint`` (None: it does)."""
    stored = meta.get('data_fingerprint')
    if not isinstance(stored, dict):
        return 'its meta has no data fingerprint (it was not trained by tools/demo.py)'
    for key in ('sha256', 'num_classes', 'image_shape'):
        if stored.get(key) != fingerprint.get(key):
            return (f'it was trained on {describe_fingerprint(stored)}; the data is '
                    f'{describe_fingerprint(fingerprint)}')
    return None


@dataclass(frozen=True)
class TeacherPlan:
    """Which teacher checkpoint the demo uses and whether it must be trained first.

    Attributes:
        path (str): The checkpoint.
        train (bool): Train it (and write ``path``) before the runs.
        reason (str): Why, for the log.
    """
    path: str
    train: bool
    reason: str


def auto_teacher_path(work_dir: str, fingerprint: Dict[str, Any]) -> str:
    """Where the demo keeps a teacher it trains for data without a committed teacher."""
    name = ''.join(c if c.isalnum() or c in '-_' else '-' for c in fingerprint['name'])
    return osp.join(work_dir, 'teachers', f'vit-teacher_{name}-{fingerprint["sha256"][:12]}.pth')


def plan_teacher(fingerprint: Dict[str, Any], work_dir: str, teacher_ckpt: Optional[str],
                 retrain: bool) -> TeacherPlan:
    """Choose the teacher for data with ``fingerprint``; refuse one trained on other data.

    Without ``teacher_ckpt``: the committed Fashion-MNIST teacher when its fingerprint matches,
    else a teacher for this data under ``work_dir/teachers/`` (trained when absent). With
    ``teacher_ckpt``: that file, trained when absent, refused when its fingerprint differs.
    ``retrain`` trains a new one in any case (replacing ``teacher_ckpt`` when given).

    Raises:
        TeacherMismatchError: ``teacher_ckpt`` (or the file in ``work_dir/teachers/``) was
            trained on other data; the message names both and the options.
    """
    auto = teacher_ckpt is None
    if auto:
        committed = osp.join(ROOT, TEACHER_CKPT)
        if not retrain and osp.isfile(committed) and fingerprint_mismatch(
                read_teacher_meta(committed), fingerprint) is None:
            return TeacherPlan(committed, False, f'{TEACHER_CKPT} (trained on this data)')
        path = auto_teacher_path(work_dir, fingerprint)
    else:
        path = teacher_ckpt
    if retrain:
        return TeacherPlan(path, True, '--retrain-teacher')
    if not osp.isfile(path):
        why = 'no teacher for this data yet' if auto else f'{path} does not exist'
        return TeacherPlan(path, True, why)
    mismatch = fingerprint_mismatch(read_teacher_meta(path), fingerprint)
    if mismatch is not None:
        raise TeacherMismatchError(
            f'The teacher checkpoint {path} does not fit the data: {mismatch}. A teacher must '
            'be trained on the images it is distilled on. Either drop --teacher-ckpt (the demo '
            f'then uses, or trains, a teacher for this data under {osp.join(work_dir, "teachers")}'
            f'), or add --retrain-teacher to train one on this data and replace {path}.')
    return TeacherPlan(path, False, f'{path} (trained on this data)')


def teacher_meta(fingerprint: Dict[str, Any], mean: Sequence[float], std: Sequence[float],
                 recipe: Dict[str, Any]) -> Dict[str, Any]:
    """The ``meta`` the demo writes into a teacher checkpoint."""
    from mmscalekd.version import __version__
    return dict(data_fingerprint=dict(fingerprint), mean=list(mean), std=list(std),
                recipe=dict(recipe), mmscalekd_version=__version__)


def teacher_summary(meta: Dict[str, Any]) -> str:
    """``'trained on 58000 labeled images of 'fashion_mnist', 6000 steps (budget)'``."""
    recipe = meta.get('recipe', {})
    fp = meta.get('data_fingerprint', {})
    seen = recipe.get('train_images', fp.get('num_train', '?'))
    plateau = recipe.get('plateau', {})
    steps = plateau.get('steps', recipe.get('max_iters', '?'))
    stopped = {'plateau': 'stopped at a plateau', 'budget': 'full budget'}.get(
        plateau.get('stopped'), '')
    return (f"trained on {seen} labeled images of {fp.get('name', '?')!r}, {steps} steps"
            f"{' (' + stopped + ')' if stopped else ''}")


def weak_teacher_warning(teacher_top1: float, labels_top1: Sequence[Tuple[str, float]]
                         ) -> Optional[str]:
    """A warning when the teacher does not beat the best labels-only student clearly.

    Args:
        teacher_top1 (float): The teacher's test top-1.
        labels_top1 (Sequence): ``(student name, mean labels-only top-1)`` pairs.

    Returns:
        str | None: The warning, None when the margin is at least :data:`TEACHER_MARGIN`.
    """
    if not labels_top1:
        return None
    name, best = max(labels_top1, key=lambda item: item[1])
    if teacher_top1 >= best + TEACHER_MARGIN:
        return None
    return (f'the teacher ({teacher_top1:.2f} %) does not clearly beat the labels-only '
            f'{name} ({best:.2f} %; wanted a margin of {TEACHER_MARGIN:.0f} points): '
            'distillation has little to transfer. Train a stronger teacher '
            '(--retrain-teacher --teacher-iters N) or use fewer labels (--labels).')


def history_from_scalars(path: str, key: str = 'accuracy/top1') -> List[List[float]]:
    """``(step, value)`` pairs of ``key`` from MMEngine's ``vis_data/scalars.json``."""
    import json
    curve = []
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if key in record:
                    curve.append([int(record['step']), float(record[key])])
    return curve
