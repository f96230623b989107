"""A dataset wrapper whose random views are functions of (seed, epoch, index)."""
from __future__ import annotations

import copy
from typing import Any, Optional, Tuple

import numpy as np
from mmengine.dataset import BaseDataset as MMEngineBaseDataset
from torch.utils.data import Dataset

from mmscalekd.registry import DATASETS
from mmscalekd.teacher_cache.manifest import view_identity
from mmscalekd.teacher_cache.sample_mix import SampleMix
from mmscalekd.teacher_cache.seeding import seeded_global_rng, view_fingerprint, view_seed

_SAMPLER_HINT = ("sampler=dict(type='EpochTaggedSampler', shuffle=True) in the train dataloader "
                 '(it passes (epoch, index) keys)')


def split_key(key: Any, owner: str) -> Tuple[int, int]:
    """``(epoch, index)`` from a key of :class:`EpochTaggedSampler`; a plain int is refused."""
    if isinstance(key, (tuple, list)) and len(key) == 2 and all(
            isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in key):
        return int(key[0]), int(key[1])
    raise TypeError(f'{owner} needs (epoch, index) keys, so that each epoch gets its own '
                    f'views, got {key!r}; use {_SAMPLER_HINT}.')


@DATASETS.register_module()
class SeededViewDataset(Dataset):
    """Re-creatable random views: the pipeline of sample ``i`` in epoch ``e`` is seeded from
    ``(seed, e, i)``, optionally followed by per-sample Mixup / CutMix.

    The wrapped dataset's pipeline runs with Python's, NumPy's and torch's (CPU) global
    generators seeded from :func:`~mmscalekd.teacher_cache.view_seed` (TinyViT's idea, arXiv
    2207.10666 Sec. 3.1: store a seed, not the augmented image), and the generators are restored
    afterwards. A view therefore depends on the sample and epoch only: not on the sampler order,
    the batch, the number of workers or processes, or a resume. This is what lets the teacher
    cache writer and training see the same views, and it makes random augmentation identical
    under any DDP world size.

    ``mix`` replaces mmpretrain's batch-level Mixup / CutMix (``ClsDataPreprocessor
    (batch_augments=...)``), whose partner depends on the batch, by the same augments drawn per
    sample (:class:`~mmscalekd.teacher_cache.sample_mix.SampleMix`): the partner is any dataset
    index and uses its own view of the epoch. With ``mix``, every view is a float32 (C, H, W)
    tensor and every labeled sample carries a ``gt_score`` (one-hot when it is not mixed).

    Keys are ``(epoch, index)`` pairs from :class:`EpochTaggedSampler`.

    Args:
        dataset (dict): Config of the wrapped dataset (its pipeline included), e.g. an
            ``ImageNet`` or ``LabeledUnlabeledDataset`` config. A config, not a built dataset:
            the teacher cache identifies views by it.
        seed (int): View seed (>= 0). Defaults to 0.
        mix (dict, optional): ``dict(augments=[...], probs=None, num_classes=None)``, the schema
            of mmpretrain's ``RandomBatchAugment`` with Mixup / CutMix. Defaults to None.
        fingerprint (bool): Put each view's CRC-32 into its metainfo (``view_crc``); the cache
            writer stores it. Defaults to False.

    Every sample's metainfo gets ``view_epoch`` and ``view_index``.
    """

    def __init__(self, dataset: dict, seed: int = 0, mix: Optional[dict] = None,
                 fingerprint: bool = False) -> None:
        name = type(self).__name__
        if not isinstance(dataset, dict):
            raise TypeError(f'{name}: dataset must be a dataset config dict (views are '
                            f'identified by it), got {type(dataset).__name__}')
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f'{name}: seed must be an int >= 0, got {seed!r}')
        if mix is not None and not isinstance(mix, dict):
            raise TypeError(f'{name}: mix must be None or dict(augments=[...], probs=None, '
                            f'num_classes=None), got {mix!r}')
        if mix is not None:
            unknown = set(mix) - {'augments', 'probs', 'num_classes'}
            if unknown or 'augments' not in mix:
                raise ValueError(f'{name}: mix takes augments (required), probs and num_classes, '
                                 f'got keys {sorted(mix)}')
        if not isinstance(fingerprint, bool):
            raise TypeError(f'{name}: fingerprint must be a bool, got {fingerprint!r}')
        self.dataset_cfg = copy.deepcopy(dataset)
        self.seed = seed
        self.mix_cfg = copy.deepcopy(mix)
        self.mixer = SampleMix(**mix) if mix is not None else None
        self.fingerprint = fingerprint
        self.dataset = DATASETS.build(copy.deepcopy(dataset))

    # ------------------------------------------------------------------- dataset API
    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information."""
        return copy.deepcopy(getattr(self.dataset, 'metainfo', {}))

    def full_init(self) -> None:
        """Fully initialise the wrapped dataset."""
        if isinstance(self.dataset, MMEngineBaseDataset) or hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    def __len__(self) -> int:
        return len(self.dataset)

    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's annotation of ``idx``."""
        return self.dataset.get_data_info(idx)

    def identity(self) -> dict:
        """The view identity the teacher cache records (config and SHA-256)."""
        return view_identity(self.dataset_cfg, self.seed, self.mix_cfg)

    # ------------------------------------------------------------------------- views
    def view(self, index: int, epoch: int) -> Any:
        """The wrapped dataset's sample ``index`` with the pipeline seeded for ``epoch``."""
        with seeded_global_rng(view_seed(self.seed, epoch, index)):
            return self.dataset[index]

    def sample(self, index: int, epoch: int) -> Any:
        """The view of ``index`` in ``epoch``, mixed with its partner when ``mix`` says so."""
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f'{type(self).__name__}: index {index} out of range for {n} '
                             'samples')
        if epoch < 0:
            raise IndexError(f'{type(self).__name__}: epoch must be >= 0, got {epoch}')
        data = self.view(index, epoch)
        if self.mixer is not None:
            drawn = self.mixer.draw(self.seed, epoch, index, n)
            if drawn is not None:
                partner = self.view(drawn.partner, epoch)
                data = self.mixer.apply(data, partner, drawn, self.seed, epoch, index,
                                        self._num_classes)
            elif isinstance(data, dict) and 'inputs' in data:
                # Unmixed samples of a mixing run look like mixed ones: float32 inputs and a
                # one-hot gt_score (mmpretrain's preprocessor reads gt_score of the whole batch
                # when the first sample has one).
                data['inputs'] = data['inputs'].float()
                self.mixer.one_hot(data.get('data_samples'), self._num_classes)
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is not None:
            sample.set_metainfo(dict(view_epoch=epoch, view_index=index))
            if self.fingerprint:
                sample.set_metainfo(dict(view_crc=view_fingerprint(data['inputs'])))
        return data

    def _num_classes(self) -> int:
        if self.mixer.num_classes is not None:
            return self.mixer.num_classes
        classes = self.metainfo.get('classes')
        if not classes:
            raise ValueError(f'{type(self).__name__}: mixing labeled samples needs the number '
                             'of classes; the dataset has no metainfo classes, so set '
                             'mix=dict(..., num_classes=K)')
        return len(classes)

    def __getitem__(self, key: Any) -> Any:
        epoch, index = split_key(key, type(self).__name__)
        return self.sample(index, epoch)
