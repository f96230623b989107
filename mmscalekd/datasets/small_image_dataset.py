"""A small labeled image set in memory (IDX files or class folders), with stratified subsets."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset

from mmscalekd.registry import DATASETS

from .image_set import ImageSet, load_image_set
from .subsets import nested_stratified_subset


@DATASETS.register_module()
class SmallImageDataset(BaseDataset):
    """One split of a small image set, decoded once per process, optionally a stratified subset.

    Reads IDX files (MNIST / Fashion-MNIST format) or a folder with one sub-folder of images per
    class (optionally inside ``train/`` and ``test/``); see :mod:`mmscalekd.datasets.image_set`.
    Each sample is ``dict(img=uint8 (H, W) or (H, W, 3) RGB array, gt_label=int64 0-d array)``,
    ready for ``PackInputs``. Class names come from the data.

    ``subset`` draws nested, seeded, per-class subsets (:func:`nested_stratified_subset`):
    ``subset=(None, 2000)`` is 2,000 labeled images from the whole split, ``subset=(10000, 500)``
    500 images from a 10,000-image pool, ``subset=(2000,), complement=True`` the split without a
    2,000-image held-out slice. Two datasets with the same ``subset[:k]`` and ``subset_seed``
    share their first ``k`` levels, so a labeled set lies inside its pool.

    Args:
        data_root (str): Folder of the image set. In the demo configs it is left out and
            ``DataRootRunner`` fills in the config's top-level ``data_root``.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        img_size (int, optional): Resize every image to ``img_size x img_size``. Defaults to
            None (keep the files' size).
        channels (int, optional): 1 (grayscale) or 3 (RGB); images are converted. Defaults to
            None (keep).
        subset (Sequence[int | None]): Nested stratified subset sizes, outermost first.
            Defaults to () (the whole split).
        subset_seed (int): Seed of the subset draws. Defaults to 0.
        complement (bool): Use the images of the second-to-last level that are not in the last
            one. Defaults to False.
        pipeline (Sequence): Transforms. Defaults to ().
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset` (``indices``,
            ``serialize_data``, ``test_mode``, ``lazy_init``, ``classes``, ``metainfo``).
    """

    def __init__(self,
                 data_root: str = '',
                 split: str = 'train',
                 img_size: Optional[int] = None,
                 channels: Optional[int] = None,
                 subset: Sequence[Optional[int]] = (),
                 subset_seed: int = 0,
                 complement: bool = False,
                 pipeline: Sequence = (),
                 **kwargs: Any) -> None:
        if not data_root:
            raise ValueError(
                'SmallImageDataset needs a data_root (a folder with IDX files or class '
                'sub-folders). The demo configs set it once, as the top-level `data_root`, '
                "which their runner (runner_type='DataRootRunner') passes to every dataset; "
                'building a dataset dict by hand, give data_root=... yourself.')
        if split not in ('train', 'test'):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if isinstance(subset, (int, str)) or not isinstance(subset, Sequence):
            raise TypeError(f'subset must be a list/tuple of sizes (ints or None, outermost '
                            f'first), got {subset!r}')
        if not isinstance(complement, bool):
            raise TypeError(f'complement must be a bool, got {complement!r}')
        if complement and not subset:
            raise ValueError('complement=True needs a subset to leave out, e.g. subset=(2000,)')
        self.split = split
        self.subset = tuple(subset)
        self.subset_seed = subset_seed
        self.complement = complement
        self.image_set: ImageSet = load_image_set(data_root, img_size=img_size,
                                                  channels=channels)
        classes = kwargs.pop('classes', None)
        if classes is not None and len(classes) != self.image_set.num_classes:
            raise ValueError(f'classes names {len(classes)} classes, the data in {data_root!r} '
                             f'has {self.image_set.num_classes}: {list(self.image_set.classes)}')
        metainfo = dict(kwargs.pop('metainfo', None) or {})
        metainfo.setdefault('classes', tuple(classes or self.image_set.classes))
        self.source_indices = np.zeros(0, dtype=np.int64)
        super().__init__(ann_file='', metainfo=metainfo, data_root=data_root, data_prefix='',
                         pipeline=pipeline, **kwargs)

    def load_data_list(self) -> List[Dict[str, Any]]:
        """The samples of the split (or of its subset), in the split's order."""
        split = self.image_set.split(self.split)
        if self.subset:
            try:
                indices = nested_stratified_subset(split.labels, self.subset,
                                                   seed=self.subset_seed,
                                                   complement=self.complement)
            except ValueError as err:
                raise ValueError(f'{type(self).__name__}({self.data_root!r}, split='
                                 f'{self.split!r}, {len(split)} images): {err}') from None
        else:
            indices = np.arange(len(split), dtype=np.int64)
        self.source_indices = indices
        return [dict(img=split.images[i], gt_label=np.array(split.labels[i], dtype=np.int64))
                for i in indices.tolist()]
