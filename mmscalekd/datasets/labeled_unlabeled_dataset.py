"""A labeled dataset followed by unlabeled images, for SSLD-style distillation.

SSLD: Cui et al., "Beyond Self-Supervision: A Simple Yet Effective Network
Distillation Alternative to Improve Backbones", https://arxiv.org/abs/2103.05959
"""
from __future__ import annotations

import bisect
import copy
from typing import Any, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset as MMEngineBaseDataset
from torch.utils.data import Dataset

from mmscalekd.registry import DATASETS


def _build(cfg: Union[dict, Dataset], pipeline: Optional[Sequence], default_type: str,
           name: str) -> Dataset:
    if isinstance(cfg, Dataset):
        if pipeline is not None:
            raise ValueError(f'`pipeline` can only be applied to a {name} dataset given as a '
                             f'config dict, got a built {type(cfg).__name__}.')
        return cfg
    if not isinstance(cfg, dict):
        raise TypeError(f'{name} must be a dataset config dict or a Dataset, '
                        f'got {type(cfg).__name__}: {cfg!r}')
    cfg = copy.deepcopy(cfg)
    cfg.setdefault('type', default_type)
    if pipeline is not None:
        cfg['pipeline'] = list(pipeline)
    return DATASETS.build(cfg)


@DATASETS.register_module()
class LabeledUnlabeledDataset(Dataset):
    """Concatenation of a labeled dataset and an unlabeled one.

    Indices ``[0, labeled_repeat * len(labeled))`` are the labeled samples
    (the labeled dataset repeated ``labeled_repeat`` times), the rest the
    unlabeled ones. The same pipeline is applied to both (when ``pipeline`` is
    given it replaces the sub-configs' pipelines). ``metainfo`` (classes) comes
    from the labeled dataset. Every packed sample's ``DataSample`` carries a
    metainfo flag ``has_label`` (bool); unlabeled samples have no ``gt_label``.

    Mixed batches: mmpretrain's ``ClsDataPreprocessor`` looks only at the first
    sample of a batch to decide whether labels exist, so a batch whose first
    sample is labeled and a later one is not fails there. Either set
    ``keep_labels=False`` (every sample then lacks ``gt_label``; right for
    label-free SSLD, whose distiller never reads labels) or use
    ``MixedLabelClsDataPreprocessor`` as the model's data preprocessor.

    Label-scarce batches: with a few labeled images in a large pool, a
    uniformly shuffled batch holds almost no labeled sample (2k labels in a
    60k pool: ~2 of 64), so the label term of a ``partial_labels`` distiller is
    an average over one or two samples: a very noisy gradient. ``labeled_repeat``
    oversamples the labeled set so that a chosen share of every batch is
    labeled (``labeled_repeat='balanced'`` computes
    ``max(1, len(unlabeled) // len(labeled))`` from the built datasets, about
    half), the usual practice in semi-supervised training. It works with any
    sampler, DDP included.

    Args:
        labeled (dict | Dataset): Labeled dataset config (e.g. ``ImageNet``,
            ``CustomDataset``) or a built dataset.
        unlabeled (dict | Dataset): Unlabeled dataset config (type defaults to
            ``UnlabeledImageFolder``) or a built dataset.
        pipeline (Sequence, optional): Transforms applied to both. Defaults to
            None (each keeps its own).
        keep_labels (bool): Keep ``gt_label`` on labeled samples. False drops
            it, so batches are homogeneous. Defaults to True.
        labeled_repeat (int | str): How many times the labeled dataset
            appears in the concatenation (an int >= 1), or ``'balanced'``:
            ``max(1, len(unlabeled) // len(labeled))``, resolved when the
            datasets are initialised, so that it follows their sizes (e.g.
            ``indices``). Defaults to 1.
        lazy_init (bool): Accepted for config compatibility with mmengine
            datasets; the sub-datasets follow their own ``lazy_init``.
            Defaults to False.
    """

    def __init__(self,
                 labeled: Union[dict, Dataset],
                 unlabeled: Union[dict, Dataset],
                 pipeline: Optional[Sequence] = None,
                 keep_labels: bool = True,
                 labeled_repeat: Union[int, str] = 1,
                 lazy_init: bool = False) -> None:
        if not isinstance(keep_labels, bool):
            raise TypeError(f'keep_labels must be a bool, got {keep_labels!r}')
        if labeled_repeat != 'balanced' and (
                isinstance(labeled_repeat, bool) or not isinstance(labeled_repeat, int)
                or labeled_repeat < 1):
            raise ValueError(f"labeled_repeat must be an int >= 1 (how many times the labeled "
                             f"dataset is repeated) or 'balanced', got {labeled_repeat!r}")
        self._labeled_repeat_cfg = labeled_repeat
        self._labeled_repeat: Optional[int] = None
        self.labeled = _build(labeled, pipeline, 'CustomDataset', 'labeled')
        self.unlabeled = _build(unlabeled, pipeline, 'UnlabeledImageFolder', 'unlabeled')
        self.keep_labels = keep_labels
        self.datasets = [self.labeled, self.unlabeled]
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        """Meta information of the labeled dataset (classes, ...)."""
        return copy.deepcopy(getattr(self.labeled, 'metainfo', {}))

    def full_init(self) -> None:
        """Fully initialise both datasets and compute the boundaries."""
        if self._fully_initialized:
            return
        for ds in self.datasets:
            if isinstance(ds, MMEngineBaseDataset):
                ds.full_init()
        if self._labeled_repeat_cfg == 'balanced':
            if len(self.labeled) == 0:
                raise ValueError(f"labeled_repeat='balanced' needs a non-empty labeled dataset; "
                                 f'{type(self.labeled).__name__} has no sample.')
            self._labeled_repeat = max(1, len(self.unlabeled) // len(self.labeled))
        else:
            self._labeled_repeat = int(self._labeled_repeat_cfg)
        labeled_size = len(self.labeled) * self._labeled_repeat
        self.cumulative_sizes: List[int] = [labeled_size, labeled_size + len(self.unlabeled)]
        self._fully_initialized = True

    @property
    def labeled_repeat(self) -> int:
        """How many times the labeled dataset is repeated (``'balanced'`` resolved)."""
        self.full_init()
        assert self._labeled_repeat is not None
        return self._labeled_repeat

    @property
    def num_labeled(self) -> int:
        """Number of labeled indices (they come first), repeats included."""
        self.full_init()
        return self.cumulative_sizes[0]

    @property
    def num_unlabeled(self) -> int:
        """Number of unlabeled samples."""
        return len(self.unlabeled)

    def __len__(self) -> int:
        self.full_init()
        return self.cumulative_sizes[-1]

    def has_label(self, idx: int) -> bool:
        """Whether global index ``idx`` is a labeled sample."""
        return self._locate(idx)[0] == 0 and self.keep_labels

    def _locate(self, idx: int) -> tuple:
        self.full_init()
        if idx < 0:
            if -idx > len(self):
                raise IndexError(f'index {idx} out of range for length {len(self)}')
            idx += len(self)
        ds_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        if ds_idx >= len(self.datasets):
            raise IndexError(f'index {idx} out of range for length {len(self)}')
        if ds_idx == 0:
            sample_idx = idx % len(self.labeled)
        else:
            sample_idx = idx - self.cumulative_sizes[ds_idx - 1]
        return ds_idx, sample_idx

    def get_data_info(self, idx: int) -> dict:
        """Annotation of sample ``idx`` with a ``has_label`` flag."""
        ds_idx, sample_idx = self._locate(idx)
        info = dict(self.datasets[ds_idx].get_data_info(sample_idx))
        has = ds_idx == 0 and self.keep_labels
        if not has:
            info.pop('gt_label', None)
        info['has_label'] = has
        return info

    def __getitem__(self, idx: int) -> Any:
        ds_idx, sample_idx = self._locate(idx)
        data = self.datasets[ds_idx][sample_idx]
        has = ds_idx == 0 and self.keep_labels
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is not None:
            if not has and 'gt_label' in sample:
                del sample.gt_label
            sample.set_metainfo(dict(has_label=has))
        return data
