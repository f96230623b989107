"""The options of one mining run, validated once, as a typed record."""
from __future__ import annotations

import math
import os.path as osp
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional

#: Near-duplicate checks against the validation set.
DEDUP_MODES = ('phash', 'feature', 'both', 'none')
# Options that change what is stored in the resumable parts (per-image scores and duplicate
# flags); parts made with other values are never mixed with new ones.
PART_OPTIONS = ('classes_per_image', 'dedup', 'phash_threshold', 'cosine_threshold')
# Options that only change the selection made from the parts when they are merged.
MERGE_OPTIONS = ('topk', )


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}')


@dataclass(frozen=True)
class MiningOptions:
    """What to mine and how: every value is checked when the record is made.

    SSLD (Cui et al., https://arxiv.org/abs/2103.05959) removes the pool images that match the
    ImageNet-1k validation set, scores the rest with the teacher and keeps, for every class,
    the ``topk`` images with the highest softmax score for that class; as in Yalniz et al.
    ("Billion-scale semi-supervised learning for image classification",
    https://arxiv.org/abs/1905.00546), whom SSLD follows, each image competes for its
    ``classes_per_image`` highest classes.

    Args:
        pool (str): Folder of candidate images (scanned recursively, or read through
            ``pool_list``).
        val (str): Folder of the validation images whose near-duplicates are removed.
        out (str): Output folder; it also holds the resumable parts of a run.
        topk (int): Images kept per class.
        pool_list (str, optional): File list of the pool, paths relative to ``pool``.
            Recommended for large pools (every process reads it instead of scanning).
        val_list (str, optional): File list of the validation set, relative to ``val``.
        classes_per_image (int): Each image competes for its top-P classes. Defaults to 10
            (Yalniz et al.; the SSLD sources do not state P).
        dedup (str): ``'phash'`` (64-bit perceptual hash, Hamming distance), ``'feature'``
            (cosine of the teacher's pooled target features), ``'both'`` or ``'none'``.
            SSLD used SIFT matching; these are our substitutes. Defaults to ``'phash'``.
        phash_threshold (int): A duplicate has a pHash Hamming distance ``<=`` this, in
            [0, 64]. Not stated in the sources. Defaults to 4.
        cosine_threshold (float): A duplicate has a feature cosine ``>=`` this, in [-1, 1].
            Not stated in the sources. Defaults to 0.95.
        batch_size (int): Images per teacher forward. Defaults to 32.
        num_workers (int): DataLoader workers (decoding, pipeline, pHash). Defaults to 4.
        save_every (int): Write a resumable part every this many batches. Defaults to 20.
        force (bool): Replace what ``out`` holds from runs with other options (their parts
            and outputs). Without it such a run stops with a message. Defaults to False.
        progress (bool): Print progress lines with throughput and ETA. Defaults to True.
        progress_interval_s (float): Seconds between progress lines. Defaults to 30.
        max_batches (int, optional): Stop after this many new batches per process (the
            parts are kept; a later run resumes). Defaults to None.
    """

    pool: str
    val: str
    out: str
    topk: int
    pool_list: Optional[str] = None
    val_list: Optional[str] = None
    classes_per_image: int = 10
    dedup: str = 'phash'
    phash_threshold: int = 4
    cosine_threshold: float = 0.95
    batch_size: int = 32
    num_workers: int = 4
    save_every: int = 20
    force: bool = False
    progress: bool = True
    progress_interval_s: float = 30.0
    max_batches: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ('pool', 'val', 'out'):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f'{name} must be a non-empty path, got {value!r}')
        for name, folder in (('pool', self.pool), ('val', self.val)):
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f'{name} folder {folder!r} does not exist or is not a folder; give the '
                    f'folder that holds the {name} images (file lists are relative to it).')
        for name in ('pool_list', 'val_list'):
            value = getattr(self, name)
            if value is not None and not osp.isfile(value):
                raise FileNotFoundError(f'{name} {value!r} does not exist; give a text file '
                                        'with one image path per line, or leave it out to '
                                        'scan the folder.')
        if osp.exists(self.out) and not osp.isdir(self.out):
            raise NotADirectoryError(f'out {self.out!r} exists and is not a folder; give a '
                                     'folder for the mining outputs.')
        for name in ('topk', 'classes_per_image', 'batch_size', 'save_every'):
            _positive_int(name, getattr(self, name))
        if self.dedup not in DEDUP_MODES:
            raise ValueError(f'dedup must be one of {DEDUP_MODES}, got {self.dedup!r}')
        if (isinstance(self.phash_threshold, bool) or not isinstance(self.phash_threshold, int)
                or not 0 <= self.phash_threshold <= 64):
            raise ValueError('phash_threshold must be an int in [0, 64] (Hamming distance of '
                             f'64-bit hashes), got {self.phash_threshold!r}')
        if (isinstance(self.cosine_threshold, bool)
                or not isinstance(self.cosine_threshold, (int, float))
                or not math.isfinite(self.cosine_threshold)
                or not -1.0 <= self.cosine_threshold <= 1.0):
            raise ValueError(f'cosine_threshold must be a number in [-1, 1], got '
                             f'{self.cosine_threshold!r}')
        object.__setattr__(self, 'cosine_threshold', float(self.cosine_threshold))
        if (isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int)
                or self.num_workers < 0):
            raise ValueError(f'num_workers must be an int >= 0, got {self.num_workers!r}')
        for name in ('force', 'progress'):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f'{name} must be a bool, got {getattr(self, name)!r}')
        if (isinstance(self.progress_interval_s, bool)
                or not isinstance(self.progress_interval_s, (int, float))
                or not self.progress_interval_s >= 0):
            raise ValueError(f'progress_interval_s must be a number >= 0, got '
                             f'{self.progress_interval_s!r}')
        if self.max_batches is not None:
            _positive_int('max_batches', self.max_batches)

    @property
    def uses_phash(self) -> bool:
        """Whether pool and validation images are hashed."""
        return self.dedup in ('phash', 'both')

    @property
    def uses_features(self) -> bool:
        """Whether the teacher's features are compared."""
        return self.dedup in ('feature', 'both')

    def part_options(self) -> Dict[str, Any]:
        """The options that the resumable parts depend on."""
        return {name: getattr(self, name) for name in PART_OPTIONS}

    def merge_options(self) -> Dict[str, Any]:
        """The options applied when the parts are merged into the selection."""
        return {name: getattr(self, name) for name in MERGE_OPTIONS}

    def to_dict(self) -> Dict[str, Any]:
        """All options, e.g. for ``summary.json``."""
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple:
        """Names of every option."""
        return tuple(f.name for f in fields(cls))
