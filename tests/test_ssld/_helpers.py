"""Shared image builders of the SSLD tests."""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(16, 16)),
            dict(type='PackInputs')]


def solid(path: str, color: tuple, size: int = 20, fmt: Optional[str] = None) -> None:
    """A one-colour RGB image."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.new('RGB', (size, size), color).save(path, format=fmt)


def textured(path: str, tint: tuple, seed: int, size: int = 48, fmt: str = 'PNG') -> None:
    """A tint plus a zero-mean random texture, so that pHashes differ between images."""
    rng = np.random.default_rng(seed)
    tex = rng.uniform(-30, 30, size=(8, 8))
    tex = np.kron(tex, np.ones((size // 8, size // 8)))[..., None]
    arr = np.clip(np.array(tint, dtype=np.float64)[None, None] + tex, 0, 255).astype(np.uint8)
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def labeled_folder(tmp_path) -> str:
    """cat: 2 images, dog: 1 (a CustomDataset folder)."""
    root = tmp_path / 'labeled'
    solid(str(root / 'cat' / 'c0.png'), (10, 10, 10))
    solid(str(root / 'cat' / 'c1.png'), (20, 20, 20))
    solid(str(root / 'dog' / 'd0.png'), (30, 30, 30))
    return root


# ----------------------------------------------------------------------------- mining
# A tiny SSLD distiller whose teacher has its own normalisation and resolution, different from
# the student's (what the config's test pipeline and data preprocessor make): mining must score
# through both, as the distiller does in training.
TINY_DISTILLER = """
default_scope = 'mmscalekd'
model = dict(
    type='ScaleKDDistiller',
    student=dict(type='ImageClassifier',
                 backbone=dict(type='ResNet', depth=18, base_channels=8),
                 neck=dict(type='GlobalAveragePooling'),
                 head=dict(type='LinearClsHead', num_classes=3, in_channels=64)),
    teacher=dict(type='TimmTeacher', model_name='resnet18', pretrained=False, input_size=28,
                 model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=3),
                 mean=[127.5, 127.5, 127.5], std=[60.0, 60.0, 60.0]),
    distill_stages=[], logit_loss=dict(type='SymmetricKLLoss'), label_free=True,
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True))
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=40, edge='short'),
                 dict(type='CenterCrop', crop_size=32), dict(type='PackInputs')]
test_dataloader = dict(batch_size=4, dataset=dict(type='CustomDataset', data_root='',
                                                  pipeline=test_pipeline))
"""


def random_teacher(cfg: dict) -> dict:
    """A teacher config built on purpose without weights (tests only).

    Adds ``allow_random_teacher=True`` where the teacher adapters accept it (they refuse a teacher
    without weights otherwise); older adapters without the flag build as they are.
    """
    import inspect

    from mmscalekd.models.teachers import BaseTeacher
    cfg = dict(cfg)
    if 'allow_random_teacher' in inspect.signature(BaseTeacher.__init__).parameters:
        cfg['allow_random_teacher'] = True
    return cfg


def tiny_teacher_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """Save random weights of the config's teacher network (a teacher *with* weights)."""
    import torch
    from mmengine import Config

    from mmscalekd.registry import MODELS
    torch.manual_seed(seed)
    teacher = MODELS.build(random_teacher(Config.fromfile(config).model.teacher))
    torch.save(dict(state_dict=teacher.model.state_dict()), path)
    return path
