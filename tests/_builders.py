"""Tiny builders shared by the tests: teachers, students, stages (small widths, small inputs) and
fake Fashion-MNIST IDX files."""
from __future__ import annotations

import os
import struct
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from mmpretrain.structures import DataSample

NUM_CLASSES = 10


def linear_head(in_channels: int, loss: Optional[dict] = None) -> dict:
    return dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=in_channels,
                loss=loss or dict(type='CrossEntropyLoss', loss_weight=1.0))


def swin_teacher(img: int = 64, embed: int = 16, **kwargs) -> dict:
    """Tiny Swin (4 stages, depth 1, window 2): tpp 4*embed @ img/16, final 8*embed @ img/32.

    Random weights (``allow_random_teacher=True``) unless ``checkpoint`` is given."""
    kwargs.setdefault('allow_random_teacher', True)
    return dict(type='MMPretrainSwinTeacher', model=dict(
        type='ImageClassifier',
        backbone=dict(type='SwinTransformer', img_size=img, window_size=2,
                      arch=dict(embed_dims=embed, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1])),
        neck=dict(type='GlobalAveragePooling'), head=linear_head(8 * embed)), **kwargs)


def eva_teacher(img: int = 56, embed: int = 16, **kwargs) -> dict:
    """Tiny EVA-style BEiTViT (patch 14 at 56 -> 4x4 grid, mean pooling, no final norm);
    random weights like :func:`swin_teacher`."""
    kwargs.setdefault('allow_random_teacher', True)
    return dict(type='MMPretrainViTTeacher', model=dict(
        type='ImageClassifier',
        backbone=dict(type='BEiTViT', img_size=img, patch_size=14,
                      arch=dict(embed_dims=embed, num_layers=3, num_heads=2,
                                feedforward_channels=2 * embed),
                      layer_scale_init_value=0.0, out_type='avg_featmap', use_abs_pos_emb=True,
                      use_rel_pos_bias=False, layer_cfgs=dict(bias=True)),
        neck=None, head=linear_head(embed)), **kwargs)


def stages(s3: Tuple[int, Tuple[int, int]], s4: Tuple[int, Tuple[int, int]],
           tpp: Tuple[int, Tuple[int, int]], final: Tuple[int, Tuple[int, int]],
           index: Tuple[int, int] = (0, 1), alpha: Sequence[float] = (0.08, 0.06),
           heads: int = 2, stem_norm: str = 'BN') -> list:
    """The usual two ScaleKD stages: s3 -> TPP, s4 with TPP queries.

    Args:
        s3/s4: (channels, (H, W)) of the student taps.
        tpp/final: (dims, (H, W)) of the teacher's TPP input space and final map.
    """
    return [
        dict(name='s3', student_index=index[0], tpp=True,
             connector=dict(type='CrossAttentionProjector', in_channels=s3[0],
                            embed_dims=tpp[0], student_hw=s3[1], query_hw=tpp[1],
                            num_heads=heads, softmax_scale=5.0, stem_norm=stem_norm),
             loss=dict(type='DualViewMimicLoss', alpha=alpha)),
        dict(name='s4', student_index=index[1], query_from='s3',
             connector=dict(type='CrossAttentionProjector', in_channels=s4[0],
                            embed_dims=final[0], student_hw=s4[1], query_hw=final[1],
                            num_heads=heads, softmax_scale=5.0, learnable_query=False,
                            stem_norm=stem_norm),
             loss=dict(type='DualViewMimicLoss', alpha=alpha)),
    ]


def classifier(backbone: dict, in_channels: int, neck: bool = True,
               head: Optional[dict] = None) -> dict:
    return dict(type='ImageClassifier', backbone=backbone,
                neck=dict(type='GlobalAveragePooling') if neck else None,
                head=head or linear_head(in_channels))


def distiller(student: dict, teacher: dict, distill_stages: list, **kwargs) -> dict:
    cfg = dict(type='ScaleKDDistiller', student=student, teacher=teacher,
               distill_stages=distill_stages,
               logit_loss=dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=0.5),
               label_loss_weight=0.5)
    cfg.update(kwargs)
    return cfg


def batch(size: int, b: int = 2, labels: bool = True) -> Tuple[torch.Tensor, list]:
    x = torch.randn(b, 3, size, size)
    samples = []
    for i in range(b):
        ds = DataSample()
        if labels:
            ds.set_gt_label(i % NUM_CLASSES)
        samples.append(ds)
    return x, samples


def grads(model: torch.nn.Module) -> Dict[str, bool]:
    return {n: p.grad is not None for n, p in model.named_parameters() if p.requires_grad}


FMNIST_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}


def write_idx(path: str, array: np.ndarray) -> None:
    """IDX format: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, raw bytes."""
    with open(path, 'wb') as f:
        f.write(bytes([0, 0, 0x08, array.ndim]))
        f.write(struct.pack('>' + 'I' * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_fake_fashion_mnist(root: str, split: str, n: int,
                             seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Random uint8 28x28 images and labels 0..9 as uncompressed Fashion-MNIST IDX files."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    os.makedirs(root, exist_ok=True)
    write_idx(os.path.join(root, FMNIST_FILES[split][0]), imgs)
    write_idx(os.path.join(root, FMNIST_FILES[split][1]), labels)
    return imgs, labels


def write_image_folder(root: str, images: np.ndarray, labels: Sequence[int],
                       classes: Sequence[str], split: Optional[str] = None,
                       ext: str = '.png') -> None:
    """One PNG (lossless) per image in ``root[/split]/<class>/<index>.png``."""
    import cv2
    folder = os.path.join(root, split) if split else root
    for cls in classes:
        os.makedirs(os.path.join(folder, cls), exist_ok=True)
    for i, (img, label) in enumerate(zip(images, labels)):
        arr = img[..., ::-1] if img.ndim == 3 else img  # cv2 writes BGR
        assert cv2.imwrite(os.path.join(folder, classes[int(label)], f'{i:05d}{ext}'), arr)
