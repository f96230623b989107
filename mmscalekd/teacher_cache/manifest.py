"""The manifest of a teacher cache and the start-up checks that compare it with a run.

``manifest.json`` in the cache folder says what the cache was written from and with:

* ``views``: the train dataset config, the view seed and the per-sample mixing
  (``SeededViewDataset``'s identity), with its SHA-256;
* ``teacher``: the teacher config without its ``checkpoint`` (SHA-256), the checkpoint path, the
  checkpoint file's SHA-256 (when it was a local file) and the SHA-256 of the weights the
  teacher ran with (its state dict, whatever the source);
* ``data_preprocessor``: the model's data preprocessor config (the teacher sees the images it
  normalises), with its SHA-256;
* ``config_sha256``: the SHA-256 of those three together;
* ``dataset_length``, ``num_classes``, ``epochs``, ``topk``, ``dtype``, ``shard_size``, the shard
  list and the library versions.

Every check raises :class:`TeacherCacheError` naming what differs, both values, and what to do.
"""
from __future__ import annotations

import json
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .hashing import canonical, config_diff, config_sha256, file_sha256
from .records import open_shard, record_dtype

FORMAT = 'mmscalekd-teacher-cache'
VERSION = 1
MANIFEST = 'manifest.json'
WRITING = 'writing.json'
#: MessageHub info key that ``TeacherCacheHook`` sets (to the cache's ``config_sha256``) once
#: its start-up checks passed; a cached distiller refuses to train in a Runner without it.
CHECKED_KEY = 'teacher_cache_checked'

_REMOTE = ('http://', 'https://', 's3://', 'open-mmlab://', 'torchvision://', 'mmcls://',
           'openmmlab://', 'modelzoo://', 'pavi://')

WRITE_HINT = ('write a cache for this run with `python tools/write_teacher_cache.py CONFIG` '
              '(same config and --cfg-options as training)')


class TeacherCacheError(ValueError):
    """A teacher cache does not match the run, or is missing or damaged."""


def view_identity(dataset: Any, seed: int, mix: Any) -> Dict[str, Any]:
    """What decides the views: the dataset config (pipeline included), the seed and the mixing.

    Args:
        dataset (dict): The wrapped dataset config.
        seed (int): The view seed.
        mix (dict, optional): The per-sample mixing config.

    Returns:
        dict: ``config`` (canonical) and ``sha256``.
    """
    cfg = canonical(dict(dataset=dataset, seed=seed, mix=mix))
    return dict(config=cfg, sha256=config_sha256(cfg))


def _local_checkpoint(path: Optional[str]) -> Optional[str]:
    if not path or not isinstance(path, str) or path.startswith(_REMOTE):
        return None
    return osp.expanduser(path)


def teacher_identity(teacher: Dict[str, Any], hash_checkpoint: bool = True) -> Dict[str, Any]:
    """What decides the teacher: its config, and its checkpoint file's content.

    Args:
        teacher (dict): The teacher adapter config.
        hash_checkpoint (bool): Hash the checkpoint file when it is local and present.
            Defaults to True.

    Returns:
        dict: ``config`` (canonical, without ``checkpoint``), ``sha256`` of it, ``checkpoint``
        (the path as configured, or None) and ``checkpoint_sha256`` (None for remote or absent
        files).
    """
    if not isinstance(teacher, dict):
        raise TeacherCacheError(
            f'a teacher cache needs the teacher as a config dict (its identity is checked '
            f'against the cache), got a built {type(teacher).__name__}')
    cfg = canonical(teacher)
    checkpoint = cfg.pop('checkpoint', None)
    local = _local_checkpoint(checkpoint)
    digest = file_sha256(local) if hash_checkpoint and local and osp.isfile(local) else None
    return dict(config=cfg, sha256=config_sha256(cfg), checkpoint=checkpoint,
                checkpoint_sha256=digest)


def preprocessor_identity(data_preprocessor: Any) -> Dict[str, Any]:
    """The data preprocessor config (canonical) and its SHA-256."""
    cfg = canonical(data_preprocessor)
    return dict(config=cfg, sha256=config_sha256(cfg))


def combined_sha256(views: dict, teacher: dict, preprocessor: dict) -> str:
    """The ``config_sha256`` of a cache: views, teacher and data preprocessor together."""
    return config_sha256(dict(views=views['sha256'], teacher=teacher['sha256'],
                              teacher_checkpoint=teacher.get('checkpoint_sha256'),
                              data_preprocessor=preprocessor['sha256']))


def _mismatch(what: str, cached: Any, current: Any, root: str, extra: str = '') -> str:
    diff = config_diff(cached, current)
    where = '; '.join(diff) if diff else 'the values differ'
    return (f'teacher cache {root}: the {what} differs from the one the cache was written with '
            f'(cache vs this run: {where}).{extra} Train with the config the cache was written '
            f'from, or {WRITE_HINT} into another folder.')


@dataclass
class CacheManifest:
    """The content of ``manifest.json`` (see the module docstring), with the checks."""

    views: Dict[str, Any]
    teacher: Dict[str, Any]
    data_preprocessor: Dict[str, Any]
    config_sha256: str
    dataset_length: int
    num_classes: int
    epochs: int
    topk: int
    dtype: str
    shard_size: int
    shards: List[Dict[str, Any]] = field(default_factory=list)
    created_with: Dict[str, Any] = field(default_factory=dict)
    writer: Dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION
    root: str = ''

    # ---------------------------------------------------------------------- derived
    @property
    def record_dtype(self) -> np.dtype:
        """The structured dtype of one record."""
        return record_dtype(self.topk, self.num_classes, self.dtype)

    @property
    def record_bytes(self) -> int:
        """Bytes per sample per epoch."""
        return int(self.record_dtype.itemsize)

    def to_json(self) -> Dict[str, Any]:
        """A JSON-serialisable dict (without ``root``)."""
        out = asdict(self)
        out.pop('root')
        out['record_bytes'] = self.record_bytes
        return out

    @classmethod
    def from_json(cls, obj: Dict[str, Any], root: str = '') -> 'CacheManifest':
        """Inverse of :meth:`to_json`."""
        if obj.get('format') != FORMAT:
            raise TeacherCacheError(f'{osp.join(root, MANIFEST)} is not a teacher cache '
                                    f'manifest (format {obj.get("format")!r}, expected '
                                    f'{FORMAT!r})')
        if obj.get('version') != VERSION:
            raise TeacherCacheError(f'{osp.join(root, MANIFEST)} has format version '
                                    f'{obj.get("version")!r}; this mmscalekd reads version '
                                    f'{VERSION}. {WRITE_HINT}.')
        names = set(cls.__dataclass_fields__) - {'root'}
        return cls(**{k: v for k, v in obj.items() if k in names}, root=root)

    # ----------------------------------------------------------------------- checks
    def check_views(self, identity: Dict[str, Any], length: int) -> None:
        """The train dataset, seed and mixing, and the dataset length, must be the cached ones.

        Args:
            identity (dict): :func:`view_identity` of this run.
            length (int): ``len(dataset)`` of this run.
        """
        if identity['sha256'] != self.views['sha256']:
            raise TeacherCacheError(_mismatch('train dataset / view seed / mixing config',
                                              self.views['config'], identity['config'],
                                              self.root))
        if int(length) != int(self.dataset_length):
            raise TeacherCacheError(
                f'teacher cache {self.root}: the dataset has {length} samples, the cache was '
                f'written for {self.dataset_length} (same config, so the data on disk changed). '
                f'{WRITE_HINT[0].upper()}{WRITE_HINT[1:]}.')

    def check_teacher(self, identity: Dict[str, Any]) -> None:
        """The teacher config and checkpoint must be the cached ones.

        Args:
            identity (dict): :func:`teacher_identity` of this run.
        """
        if identity['sha256'] != self.teacher['sha256']:
            raise TeacherCacheError(_mismatch('teacher config', self.teacher['config'],
                                              identity['config'], self.root))
        cached_sha = self.teacher.get('checkpoint_sha256')
        current_sha = identity.get('checkpoint_sha256')
        if cached_sha and current_sha and cached_sha != current_sha:
            raise TeacherCacheError(
                f'teacher cache {self.root}: the teacher checkpoint {identity["checkpoint"]!r} '
                f'has SHA-256 {current_sha}, the cache was written with '
                f'{self.teacher.get("checkpoint")!r} of SHA-256 {cached_sha}: other weights. '
                f'{WRITE_HINT[0].upper()}{WRITE_HINT[1:]}.')
        if identity.get('checkpoint') != self.teacher.get('checkpoint') and not (
                cached_sha and current_sha):
            raise TeacherCacheError(
                f'teacher cache {self.root}: the teacher checkpoint is '
                f'{identity.get("checkpoint")!r}, the cache was written with '
                f'{self.teacher.get("checkpoint")!r}, and the file cannot be compared (not '
                f'a local file here or there). Use the same checkpoint, or {WRITE_HINT}.')

    def check_preprocessor(self, identity: Dict[str, Any]) -> None:
        """The data preprocessor (the teacher's input normalisation) must be the cached one."""
        if identity['sha256'] != self.data_preprocessor['sha256']:
            raise TeacherCacheError(_mismatch('data preprocessor config',
                                              self.data_preprocessor['config'],
                                              identity['config'], self.root))

    def check_num_classes(self, num_classes: int, who: str = 'the student head') -> None:
        """The student predicts as many classes as the cached teacher."""
        if int(num_classes) != int(self.num_classes):
            raise TeacherCacheError(
                f'teacher cache {self.root}: {who} has {num_classes} classes, the cached '
                f'teacher {self.num_classes}; logit distillation needs the same classes.')

    def check_epochs(self, needed: int, cycle: bool = False) -> None:
        """The run needs ``needed`` data epochs; the cache must hold them (unless ``cycle``)."""
        if not cycle and int(needed) > int(self.epochs):
            raise TeacherCacheError(
                f'teacher cache {self.root} holds {self.epochs} epoch(s) of views, this run '
                f'needs {needed}. Extend it with `python tools/write_teacher_cache.py CONFIG '
                f'--epochs {needed}` (the epochs already written are kept), or set '
                'cycle=True in the TeacherCacheDataset to replay epoch e % '
                f'{self.epochs} (repeated augmentations).')

    def check_shards(self) -> None:
        """Every shard the manifest lists exists with its recorded size (no file is read)."""
        missing = []
        for side in self.shards:
            path = osp.join(self.root, side['file'])
            if not osp.isfile(path) or osp.getsize(path) != side['bytes']:
                missing.append(side['file'])
        if missing:
            raise TeacherCacheError(
                f'teacher cache {self.root}: {len(missing)} shard file(s) are missing or have '
                f'another size than the manifest says, e.g. {missing[:3]}. Run '
                '`python tools/write_teacher_cache.py CONFIG` again: it writes the missing '
                'shards and keeps the others.')
        expected = self.epochs * (-(-self.dataset_length // self.shard_size))
        if len(self.shards) != expected:
            raise TeacherCacheError(
                f'teacher cache {self.root}: the manifest lists {len(self.shards)} shard(s), '
                f'{self.epochs} epoch(s) of {self.dataset_length} samples in shards of '
                f'{self.shard_size} need {expected}; the manifest is damaged.')

    def open_part(self, epoch: int, part: int) -> np.ndarray:
        """Memory-map the records of one shard."""
        side = self.shard(epoch, part)
        return open_shard(self.root, side['file'], self.record_dtype,
                          side['stop'] - side['start'])

    def shard(self, epoch: int, part: int) -> Dict[str, Any]:
        """The manifest entry of one shard."""
        if not hasattr(self, '_by_key'):
            self._by_key = {(s['epoch'], s['part']): s for s in self.shards}
        return self._by_key[(epoch, part)]

    def same_content_as(self, other: 'CacheManifest') -> List[str]:
        """What differs in content (epochs aside) from another manifest, as readable lines."""
        out = []
        for name in ('config_sha256', 'dataset_length', 'num_classes', 'topk', 'dtype',
                     'shard_size'):
            if getattr(self, name) != getattr(other, name):
                out.append(f'{name}: {getattr(self, name)!r} vs {getattr(other, name)!r}')
        if self.teacher.get('weights_sha256') and other.teacher.get('weights_sha256') and \
                self.teacher['weights_sha256'] != other.teacher['weights_sha256']:
            out.append('teacher weights_sha256: '
                       f'{self.teacher["weights_sha256"]} vs {other.teacher["weights_sha256"]}')
        return out


def load_manifest(root: str) -> CacheManifest:
    """Read ``<root>/manifest.json``.

    Args:
        root (str): The cache folder.

    Raises:
        TeacherCacheError: There is no complete cache there.
    """
    path = osp.join(root, MANIFEST)
    if not osp.isfile(path):
        partial = osp.isfile(osp.join(root, WRITING))
        state = ('a cache is being written there, or its writer stopped before the end (run '
                 'it again to finish)') if partial else 'there is no cache there'
        raise TeacherCacheError(f'teacher cache {root!r} has no {MANIFEST}: {state}. '
                                f'{WRITE_HINT[0].upper()}{WRITE_HINT[1:]}.')
    try:
        with open(path) as f:
            obj = json.load(f)
    except ValueError as err:
        raise TeacherCacheError(f'{path} is not valid JSON ({err}); the cache is damaged. '
                                f'{WRITE_HINT[0].upper()}{WRITE_HINT[1:]}.') from None
    return CacheManifest.from_json(obj, root=root)
