"""The demo's configs and how one run's config is made from them.

Each run loads a config of ``configs/demo/`` unchanged and sets only what the demo varies or
reads from the data: the data root, the subset sizes, the class count, the pixel mean/std, the
teacher checkpoint, the number of steps (the schedule follows it) and the seed.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: Repository root (configs and the committed teacher are found relative to it).
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STUDENTS = {'cnn': 'resnet18-w8', 'mlp': 'mixer-t4'}
STUDENT_NAMES = {'cnn': 'ResNet-18 (CIFAR stem, width 8)', 'mlp': 'MLP-Mixer (4 blocks, width 64)'}
METHODS = ('labels', 'kd', 'scalekd', 'ssld')
METHOD_NAMES = {'labels': 'labels only', 'kd': 'logit KD', 'scalekd': 'ScaleKD (CAP+DFM+TPP+KD)',
                'ssld': 'SSLD (label-free)'}
TEACHER_NAME = 'ViT teacher (p7, d128, 4 blocks)'
TEACHER_CONFIG = 'configs/demo/vit-teacher_fashion-mnist.py'
TEACHER_CKPT = 'checkpoints/demo/vit-teacher_fashion-mnist.pth'
#: CPU time of one training step (batch 64, 1 thread), in ms: ``(cnn, mlp)``. Measured by us on
#: the 2-core CPU machine (25-step runs of each config, steps 6-25, 2026-12-01). Used only to
#: order the runs (longest first) and for the ETA.
STEP_COST_MS = {'labels': (100, 87), 'kd': (117, 105), 'scalekd': (297, 323), 'ssld': (122, 109)}
#: CPU time of one evaluated test image, in ms (students and teacher alike, roughly).
EVAL_COST_MS = 0.3


def run_config_path(method: str, student: str) -> str:
    """``configs/demo/<method>_<student>_fashion-mnist-2k.py`` (relative to the repository)."""
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}; choose from {list(METHODS)}')
    if student not in STUDENTS:
        raise ValueError(f'unknown student {student!r}; choose from {sorted(STUDENTS)}')
    return f'configs/demo/{method}_{STUDENTS[student]}_fashion-mnist-2k.py'


def run_cost(method: str, student: str, iters: int, eval_images: int) -> float:
    """Estimated CPU seconds of one run (training steps plus evaluations)."""
    step = STEP_COST_MS[method][0 if student == 'cnn' else 1]
    return (iters * step + eval_images * EVAL_COST_MS) / 1000.0


@dataclass(frozen=True)
class DataFacts:
    """What the demo reads from the data and writes into every config.

    Attributes:
        data_root (str): The image set's folder.
        num_classes (int): Class count.
        mean (tuple): Per-channel pixel mean of the training split (0-255).
        std (tuple): Per-channel pixel std of the training split (0-255).
        num_train (int): Training images.
        num_test (int): Test images.
    """
    data_root: str
    num_classes: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    num_train: int
    num_test: int


def _subset(sizes: Sequence[Optional[int]], total: int) -> tuple:
    """Sizes for ``SmallImageDataset.subset``: a level equal to the whole set becomes None."""
    sizes = [None if s is None or s == total and i == 0 else s for i, s in enumerate(sizes)]
    while sizes and sizes[-1] is None:
        sizes.pop()
    return tuple(sizes)


def _datasets(node: Any, role: str, found: List[Tuple[str, dict]]) -> None:
    """The ``SmallImageDataset`` dicts below ``node``, with their role (labeled / unlabeled)."""
    if isinstance(node, dict):
        if node.get('type') == 'LabeledUnlabeledDataset':
            _datasets(node['labeled'], 'labeled', found)
            _datasets(node['unlabeled'], 'unlabeled', found)
            return
        if node.get('type') == 'SmallImageDataset':
            found.append((role, node))
            return
        for key, value in node.items():
            if key != 'pipeline':
                _datasets(value, role, found)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _datasets(value, role, found)


def _set(cfg: Any, path: str, value: Any) -> None:
    """Set the existing key ``path`` (dotted); a missing one means the config changed shape."""
    node = cfg
    keys = path.split('.')
    for depth, key in enumerate(keys):
        try:
            present = key in node
        except TypeError:
            present = False
        if not present:
            raise KeyError(f'the demo expects `{path}` in its config, but '
                           f'`{".".join(keys[:depth + 1])}` is missing; was the config changed?')
        if depth < len(keys) - 1:
            node = node[key]
    node[keys[-1]] = value


def apply_data(cfg: Any, data: DataFacts, labels: Optional[int], pool: Optional[int],
               val_size: int, curve_size: int) -> Any:
    """Point ``cfg`` at the data: data root, subsets, class count, mean/std.

    Args:
        cfg (Config): A demo run or teacher config; changed in place.
        data (DataFacts): The data's facts.
        labels (int, optional): Labeled images (labels-only, KD, ScaleKD). None: keep.
        pool (int, optional): Training images the distillation methods see (None: keep).
        val_size (int): Test images of the final evaluation (the table).
        curve_size (int): Test images of the evaluations during training (the curves).

    Returns:
        Config: ``cfg``.
    """
    cfg.data_root = data.data_root
    found: List[Tuple[str, dict]] = []
    _datasets(cfg.get('train_dataloader', {}), 'labeled', found)
    for role, ds in found:
        if ds.get('complement'):  # the teacher's training images: the split minus its hold-out
            continue
        level0 = pool if pool is not None else (ds.get('subset') or (None, ))[0]
        if role == 'labeled' and labels is not None:
            ds['subset'] = _subset((level0, labels), data.num_train)
        elif role == 'unlabeled':
            ds['subset'] = _subset((level0, ), data.num_train)
    for key, size in (('val_dataloader', curve_size), ('test_dataloader', val_size)):
        loader = cfg.get(key)
        if not loader:
            continue
        ds = loader['dataset']
        if ds.get('split') != 'test':
            continue  # the teacher's validation set is its held-out training slice
        # The curve subset lies inside the table's subset (nested, same seed).
        sizes = (val_size, curve_size) if key == 'val_dataloader' else (val_size, )
        ds['subset'] = _subset(sizes, data.num_test)
    model = cfg.model
    _set(cfg, 'model.data_preprocessor.num_classes', data.num_classes)
    _set(cfg, 'model.data_preprocessor.mean', list(data.mean))
    _set(cfg, 'model.data_preprocessor.std', list(data.std))
    if model.get('type') == 'ScaleKDDistiller':
        _set(cfg, 'model.student.head.num_classes', data.num_classes)
        _set(cfg, 'model.teacher.model.head.num_classes', data.num_classes)
    else:
        _set(cfg, 'model.head.num_classes', data.num_classes)
    return cfg


def set_iters(cfg: Any, iters: int, evaluations: int = 5) -> Any:
    """Train ``iters`` steps with ``evaluations`` evaluations; the schedule follows (OneCycleLR).

    Args:
        cfg (Config): Changed in place.
        iters (int): ``train_cfg.max_iters``.
        evaluations (int): How many evaluations during training (the last at ``iters``).

    Returns:
        Config: ``cfg``.
    """
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f'iters must be a positive int, got {iters!r}')
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = max(1, iters // evaluations)
    cfg.default_hooks.logger.interval = max(1, min(100, iters // 10))
    return cfg


def load_config(path: str) -> Any:
    """Load a demo config (path relative to the repository root or absolute)."""
    from mmengine.config import Config
    return Config.fromfile(path if osp.isabs(path) else osp.join(ROOT, path))


def student_run_config(method: str, student: str, data: DataFacts, *, labels: int, pool: int,
                       val_size: int, curve_size: int, iters: Optional[int], seed: int,
                       teacher_ckpt: Optional[str], work_dir: str) -> Any:
    """The config of one demo run: ``configs/demo/<method>_<student>...py`` on the demo's data.

    Args:
        method (str): One of :data:`METHODS`.
        student (str): One of :data:`STUDENTS`.
        data (DataFacts): The data's facts.
        labels, pool, val_size, curve_size: See :func:`apply_data`.
        iters (int, optional): Steps (None: the config's).
        seed (int): ``randomness.seed``.
        teacher_ckpt (str, optional): The teacher checkpoint (distillation methods).
        work_dir (str): The run's work dir.

    Returns:
        Config: Ready for ``RUNNERS.build``.
    """
    from mmscalekd.utils import adapt_cfg_to_device
    cfg = load_config(run_config_path(method, student))
    apply_data(cfg, data, labels, pool, val_size, curve_size)
    if cfg.model.get('teacher') is not None:
        if teacher_ckpt is None:
            raise ValueError(f'{method} needs a teacher checkpoint')
        cfg.model.teacher.checkpoint = teacher_ckpt
    if iters is not None:
        set_iters(cfg, iters)
    cfg.randomness.seed = seed
    cfg.work_dir = work_dir
    return adapt_cfg_to_device(cfg)


def config_summary(cfg: Any) -> Dict[str, Any]:
    """The values a run's config took that the results record."""
    return dict(max_iters=cfg.train_cfg.max_iters, val_interval=cfg.train_cfg.val_interval,
                batch_size=cfg.train_dataloader.batch_size, seed=cfg.randomness.seed)
