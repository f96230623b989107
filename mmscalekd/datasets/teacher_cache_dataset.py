"""Training views with the teacher's cached soft targets attached."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional, Tuple

import numpy as np
import torch

from mmscalekd.registry import DATASETS
from mmscalekd.teacher_cache.manifest import CacheManifest, TeacherCacheError, load_manifest
from mmscalekd.teacher_cache.records import decode_dense_logits
from mmscalekd.teacher_cache.seeding import view_fingerprint

from .seeded_view_dataset import SeededViewDataset, split_key


@DATASETS.register_module()
class TeacherCacheDataset(SeededViewDataset):
    """:class:`SeededViewDataset` that attaches the teacher's cached output to every sample.

    The cache (written by ``tools/write_teacher_cache.py`` from the same config) holds, per
    sample and epoch, the teacher's top-k probabilities and the fingerprint of the view it saw.
    Each sample gets a data field ``teacher_logits`` ``(num_classes,)`` float32: logits up to a
    per-sample constant whose softmax is the cached distribution (exact on the top-k; the mass
    left outside them is spread uniformly, see ``docs/teacher_cache.md``). A
    ``ScaleKDDistiller`` with ``teacher_cache`` reads them instead of running a teacher.

    At construction (when the Runner builds the train dataloader, before the first step) the
    manifest is checked against this run: the dataset config, seed and mixing (``views``), the
    dataset length and the presence of every shard. The teacher and the data preprocessor are
    checked by the distiller; the number of epochs by :class:`TeacherCacheHook`.

    Args:
        dataset (dict): The wrapped dataset config, as for :class:`SeededViewDataset`.
        cache_dir (str): Folder of the cache (its ``manifest.json``).
        seed (int): View seed. Defaults to 0.
        mix (dict, optional): Per-sample Mixup / CutMix, as for :class:`SeededViewDataset`.
            Defaults to None.
        cycle (bool): Replay epoch ``e % E`` of an ``E``-epoch cache (its views and targets:
            repeated augmentations) instead of refusing epochs beyond it. Defaults to False.
        verify_views (bool): Compare each view's fingerprint with the one the teacher saw and
            fail on a difference (changed images, pipeline code or image library). Costs a
            CRC-32 per sample. Defaults to True.
    """

    def __init__(self, dataset: dict, cache_dir: str, seed: int = 0, mix: Optional[dict] = None,
                 cycle: bool = False, verify_views: bool = True) -> None:
        if not isinstance(cache_dir, str) or not cache_dir:
            raise TypeError(f'TeacherCacheDataset: cache_dir must be a folder path, got '
                            f'{cache_dir!r}')
        for name, flag in (('cycle', cycle), ('verify_views', verify_views)):
            if not isinstance(flag, bool):
                raise TypeError(f'TeacherCacheDataset: {name} must be a bool, got {flag!r}')
        super().__init__(dataset, seed=seed, mix=mix, fingerprint=False)
        self.cache_dir = cache_dir
        self.cycle = cycle
        self.verify_views = verify_views
        self.manifest: CacheManifest = load_manifest(cache_dir)
        self.manifest.check_views(self.identity(), len(self))
        self.manifest.check_shards()
        self._parts: 'OrderedDict[Tuple[int, int], np.ndarray]' = OrderedDict()

    #: Shards kept memory-mapped per process (each holds a file descriptor): an epoch of
    #: ImageNet in shards of 10000 is 129 of them.
    max_open_shards = 256

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_parts'] = OrderedDict()  # memory maps are reopened in each worker
        return state

    @property
    def num_epochs(self) -> int:
        """Epochs held by the cache."""
        return int(self.manifest.epochs)

    def cached_epoch(self, epoch: int) -> int:
        """The cache epoch that serves training epoch ``epoch``."""
        if self.cycle:
            return epoch % self.num_epochs
        if epoch >= self.num_epochs:
            self.manifest.check_epochs(epoch + 1)
        return epoch

    def record(self, index: int, epoch: int) -> np.void:
        """The cached record of sample ``index`` in cache epoch ``epoch``."""
        part, offset = divmod(index, self.manifest.shard_size)
        key = (epoch, part)
        array = self._parts.get(key)
        if array is None:
            if len(self._parts) >= self.max_open_shards:
                self._parts.popitem(last=False)  # the least recently used
            array = self._parts[key] = self.manifest.open_part(epoch, part)
        else:
            self._parts.move_to_end(key)
        return array[offset]

    def __getitem__(self, key: Any) -> Any:
        epoch, index = split_key(key, type(self).__name__)
        epoch = self.cached_epoch(epoch)
        data = self.sample(index, epoch)
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is None or 'inputs' not in data:
            raise TypeError('TeacherCacheDataset: the pipeline must end with PackInputs '
                            f'(inputs + data_samples), got {type(data).__name__}')
        rec = self.record(index, epoch)
        if self.verify_views:
            crc = view_fingerprint(data['inputs'])
            if crc != int(rec['crc']):
                versions = ', '.join(f'{k} {v}' for k, v in
                                     sorted(self.manifest.created_with.items()))
                raise TeacherCacheError(
                    f'teacher cache {self.cache_dir}: the view of sample {index} in epoch '
                    f'{epoch} is not the one the teacher saw (fingerprint {crc:#010x}, cached '
                    f'{int(rec["crc"]):#010x}). The images on disk, a transform\'s code or an '
                    f'image library changed since the cache was written (with {versions}). '
                    'Write the cache again, or set verify_views=False to train on it anyway '
                    '(the targets then belong to other views).')
        logits = decode_dense_logits(rec['index'], rec['logit'], float(rec['lse']),
                                     self.manifest.num_classes)
        sample.set_field(logits, 'teacher_logits', dtype=torch.Tensor)
        sample.set_metainfo(dict(cache_epoch=epoch))
        return data
