"""Shared set-up of the teacher-cache tests: fake Fashion-MNIST, a random-init teacher checkpoint
and the tiny KD config (``tests/data/configs/tiny_cache_kd.py``) pointed at them."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import torch
from mmengine.config import Config

from mmscalekd.registry import MODELS
from mmscalekd.teacher_cache.writer import live_config  # noqa: F401  (re-exported)
from tests._builders import write_fake_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests/data/configs/tiny_cache_kd.py'
NUM_TRAIN = 32


def make_data(root: Path, n: int = NUM_TRAIN) -> Dict[str, Path]:
    """Fake train images and a random-init teacher checkpoint under ``root``."""
    data = root / 'fmnist'
    write_fake_fashion_mnist(str(data), 'train', n, seed=0)
    write_fake_fashion_mnist(str(data), 'test', 4, seed=1)  # mmpretrain checks that all exist
    cfg = Config.fromfile(str(CFG))
    torch.manual_seed(0)
    teacher = MODELS.build(cfg.model.teacher.model)
    ckpt = root / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    return dict(data=data, teacher=ckpt)


def options(data: Dict[str, Path], cache_dir: Path) -> Dict[str, str]:
    """``--cfg-options`` of a run of the tiny config."""
    return {'train_dataloader.dataset.dataset.data_root': str(data['data']),
            'train_dataloader.dataset.cache_dir': str(cache_dir),
            'model.teacher_cache.cache_dir': str(cache_dir),
            'model.teacher.checkpoint': str(data['teacher'])}


def tiny_config(data: Dict[str, Path], cache_dir: Path,
                extra: Optional[dict] = None) -> Config:
    """The tiny config with the paths filled in (and ``extra`` overrides)."""
    cfg = Config.fromfile(str(CFG))
    cfg.merge_from_dict(options(data, cache_dir))
    if extra:
        cfg.merge_from_dict(extra)
    return cfg
