"""Fashion-MNIST read into numpy arrays in one pass, cached per process.

mmpretrain's ``FashionMNIST`` builds its 60,000 samples one tensor at a time, about a second per
dataset on two CPU cores. This subclass reads the same uncompressed IDX files with mmpretrain's
own IDX readers, keeps the decoded arrays in a small per-process cache keyed by file path, size
and modification time, and hands out read-only views, so a dataset is ready in milliseconds and
samples are identical. It is a drop-in for configs written against mmpretrain's class; the demo
configs use :class:`mmscalekd.datasets.SmallImageDataset` (any IDX set or image folder, stratified
subsets).
"""
from __future__ import annotations

import functools
import os
import warnings
from typing import Any, Dict, List, Tuple

import numpy as np
from mmengine.fileio import join_path
from mmpretrain.datasets import FashionMNIST
from mmpretrain.datasets.mnist import read_image_file, read_label_file
from mmpretrain.datasets.utils import rm_suffix

from mmscalekd.registry import DATASETS


@functools.lru_cache(maxsize=8)
def _read_idx(path: str, kind: str, size: int, mtime_ns: int) -> np.ndarray:
    """Decode one IDX file into a read-only array (``size``/``mtime_ns`` key the cache)."""
    reader = read_image_file if kind == 'images' else read_label_file
    with warnings.catch_warnings():  # the reader wraps a read-only buffer; we copy it anyway
        warnings.filterwarnings('ignore', message='The given NumPy array is not writable')
        array = reader(path).numpy().copy()
    array.flags.writeable = False
    return array


def read_idx_cached(path: str, kind: str) -> np.ndarray:
    """Read an uncompressed IDX file of Fashion-MNIST/MNIST, cached while the file is unchanged.

    Args:
        path (str): Path of the uncompressed IDX file.
        kind (str): ``'images'`` (returns uint8 ``(N, 28, 28)``) or ``'labels'`` (int64 ``(N,)``).

    Returns:
        np.ndarray: A read-only array shared by every caller.
    """
    if kind not in ('images', 'labels'):
        raise ValueError(f"kind must be 'images' or 'labels', got {kind!r}")
    stat = os.stat(path)
    return _read_idx(os.path.abspath(path), kind, stat.st_size, stat.st_mtime_ns)


@DATASETS.register_module()
class ArrayFashionMNIST(FashionMNIST):
    """mmpretrain's ``FashionMNIST``, with the IDX files decoded once per process.

    Same arguments, files and samples: ``img`` is a uint8 ``(28, 28)`` array (a read-only view
    into the cached array) and ``gt_label`` a 0-d int64 array. The files follow ``split``; the
    parent picks them by ``test_mode`` alone, so there ``split='test'`` without ``test_mode=True``
    silently gives the training images (the two agree whenever ``test_mode`` matches the split).
    When the files are missing it falls back to the parent, which downloads them
    (``download=True``) or raises its own error.

    Args:
        data_root (str): Folder with the uncompressed IDX files.
        **kwargs: Everything else of :class:`mmpretrain.datasets.FashionMNIST`.
    """

    def load_data_list(self) -> List[Dict[str, Any]]:
        if not self._check_exists():
            return super().load_data_list()
        root = self.data_prefix['root']
        files: List[Tuple[str, str]] = self.test_list if self.split == 'test' else self.train_list
        imgs = read_idx_cached(join_path(root, rm_suffix(files[0][0])), 'images')
        labels = read_idx_cached(join_path(root, rm_suffix(files[1][0])), 'labels')
        if len(imgs) != len(labels):
            raise RuntimeError(f'{root}: {len(imgs)} images but {len(labels)} labels in '
                               f'{files[0][0]} / {files[1][0]}; the IDX files are inconsistent.')
        return [{'img': img, 'gt_label': np.array(label, dtype=np.int64)}
                for img, label in zip(imgs, labels.tolist())]
