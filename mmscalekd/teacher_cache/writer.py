"""Write a teacher cache: run the frozen teacher over ``E`` epochs of seeded views, once.

Library code of ``tools/write_teacher_cache.py``. The work is a list of shards (an epoch and a
contiguous index range each); process ``r`` of ``W`` takes shards ``r, r + W, ...``, so the
same code runs in one process, under ``torchrun`` or slurm. A shard is written to a temporary file
and renamed, then its sidecar; a restarted writer skips the shards whose sidecar exists. The
manifest is written last, by rank 0, once every shard is there, so a cache folder either has a
complete ``manifest.json`` or none. An existing cache is never overwritten by another one: a
folder holding a cache of another config, teacher, ``topk`` or ``dtype`` is refused; the same
cache with fewer epochs is extended (its shards are kept).
"""
from __future__ import annotations

import copy
import os
import os.path as osp
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import barrier, broadcast_object_list, get_dist_info
from mmengine.logging import print_log

from .hashing import state_dict_sha256
from .manifest import (
    MANIFEST,
    WRITING,
    CacheManifest,
    TeacherCacheError,
    combined_sha256,
    load_manifest,
    preprocessor_identity,
    teacher_identity,
)
from .records import (
    encode_topk,
    read_sidecar,
    record_dtype,
    shard_ranges,
    write_json_atomic,
    write_shard,
)

CACHE_DATASETS = ('TeacherCacheDataset', 'SeededViewDataset')
DEFAULT_TOPK = 10
DEFAULT_SHARD_SIZE = 10000
AMP_DTYPES = {'float16': torch.float16, 'bfloat16': torch.bfloat16}


@dataclass
class CacheSources:
    """What a training config says about the cache: views, teacher, data preprocessor."""

    dataset: Dict[str, Any]  # the wrapped dataset config
    seed: int
    mix: Optional[Dict[str, Any]]
    cache_dir: Optional[str]
    teacher: Dict[str, Any]
    data_preprocessor: Dict[str, Any]


def _plain(cfg: Any) -> Any:
    return cfg.to_dict() if hasattr(cfg, 'to_dict') else copy.deepcopy(cfg)


def cache_sources(cfg: Any) -> CacheSources:
    """Read the cache-relevant parts of a training config, checking that they can be cached.

    Args:
        cfg (Config): A training config whose ``model`` is a ``ScaleKDDistiller`` with
            ``distill_stages=[]`` and whose ``train_dataloader.dataset`` is a
            ``TeacherCacheDataset`` (or a ``SeededViewDataset``).

    Raises:
        TeacherCacheError: The config cannot be cached; the message says why.
    """
    model = _plain(cfg.get('model'))
    if not isinstance(model, dict) or model.get('type') != 'ScaleKDDistiller':
        found = model.get('type') if isinstance(model, dict) else model
        raise TeacherCacheError(f'a teacher cache is written for a ScaleKDDistiller config; '
                                f'the model is {found!r}')
    if model.get('distill_stages'):
        raise TeacherCacheError(
            'a teacher cache holds logits only; feature stages (distill_stages) need the live '
            'teacher (their targets are ~450 KB per image and TPP runs the teacher on student '
            'features). Cache logit KD / SSLD configs (distill_stages=[]).')
    if model.get('logit_loss') is None:
        raise TeacherCacheError('the config has no logit_loss: nothing would read the cache')
    if model.get('teacher_train_mode'):
        raise TeacherCacheError('teacher_train_mode=True makes the teacher stochastic (drop '
                                'path, dropout): its outputs cannot be cached')
    teacher = model.get('teacher')
    if not isinstance(teacher, dict):
        raise TeacherCacheError(f'model.teacher must be a teacher adapter config, got '
                                f'{teacher!r}')
    preprocessor = model.get('data_preprocessor') or _plain(cfg.get('data_preprocessor')) or \
        dict(type='ClsDataPreprocessor')
    if preprocessor.get('batch_augments'):
        raise TeacherCacheError(
            'the data preprocessor has batch_augments: their partners depend on the batch, so '
            'cached teacher outputs could not be matched. Move them to the dataset: '
            "TeacherCacheDataset(..., mix=dict(augments=[...], probs=...)) (same schema), and "
            'drop batch_augments.')
    loader = _plain(cfg.get('train_dataloader')) or {}
    dataset = loader.get('dataset') or {}
    if dataset.get('type') not in CACHE_DATASETS:
        raise TeacherCacheError(
            f'train_dataloader.dataset must be a TeacherCacheDataset (or SeededViewDataset) '
            f'whose views can be re-created, got type {dataset.get("type")!r}; wrap the '
            "dataset: dict(type='TeacherCacheDataset', dataset=<your dataset>, "
            "cache_dir='...'), with sampler=dict(type='EpochTaggedSampler', shuffle=True).")
    if 'dataset' not in dataset:
        raise TeacherCacheError(f'{dataset["type"]} needs a dataset=<config> to wrap')
    return CacheSources(dataset=dataset['dataset'], seed=dataset.get('seed', 0),
                        mix=dataset.get('mix'), cache_dir=dataset.get('cache_dir'),
                        teacher=teacher, data_preprocessor=preprocessor)


def live_config(cfg: Any) -> Any:
    """The live-teacher twin of a cached training config: the same views, no cache.

    The ``TeacherCacheDataset`` becomes a ``SeededViewDataset`` with the same dataset, seed and
    mixing, the distiller loses ``teacher_cache`` (so it builds and runs the teacher) and
    ``TeacherCacheHook`` is dropped. Training it gives the run the cache replays (used by the
    equivalence tests, the benchmark and the top-k sweep).

    Args:
        cfg (Config): A cached config.

    Returns:
        Config: A new config.
    """
    from mmengine.config import Config
    live = Config(cfg.to_dict())
    dataset = live.train_dataloader.dataset
    if dataset.get('type') != 'TeacherCacheDataset':
        raise TeacherCacheError(f'live_config needs a TeacherCacheDataset config, got '
                                f'{dataset.get("type")!r}')
    dataset.type = 'SeededViewDataset'
    for key in ('cache_dir', 'cycle', 'verify_views'):
        dataset.pop(key, None)
    live.model.pop('teacher_cache', None)
    live.custom_hooks = [h for h in live.get('custom_hooks', [])
                         if h.get('type') != 'TeacherCacheHook']
    return live


def library_versions() -> Dict[str, str]:
    """Versions of the libraries that shape views and teacher outputs."""
    out = {}
    for pkg in ('torch', 'torchvision', 'numpy', 'mmcv', 'mmengine', 'mmpretrain', 'timm',
                'opencv-python', 'pillow', 'mmscalekd'):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def build_teacher(teacher_cfg: dict, preprocessor: torch.nn.Module) -> torch.nn.Module:
    """Build a teacher adapter the way ``ScaleKDDistiller`` does (frozen, eval, given the
    student's input convention at build)."""
    from mmscalekd.models.teachers import BaseTeacher, student_input_convention
    from mmscalekd.registry import MODELS, build_checked
    cfg = copy.deepcopy(teacher_cfg)
    cfg.update(student_input_convention(preprocessor))
    teacher = build_checked(MODELS, cfg, 'model.teacher')
    if not isinstance(teacher, BaseTeacher):
        raise TeacherCacheError(f'model.teacher built a {type(teacher).__name__}, not a '
                                'teacher adapter (BaseTeacher)')
    teacher.train(False)
    return teacher


@dataclass
class WriteResult:
    """What a call of :func:`write_teacher_cache` did (this process)."""

    root: str
    shards_written: int
    shards_skipped: int
    samples_written: int
    seconds: float
    manifest: Optional[CacheManifest]

    @property
    def samples_per_second(self) -> float:
        """Samples written per second by this process (0 when it wrote none)."""
        return self.samples_written / self.seconds if self.seconds > 0 else 0.0


def _check_existing(root: str, plan: CacheManifest) -> Optional[CacheManifest]:
    """The complete cache already in ``root`` (None if there is none), if it is compatible."""
    existing = None
    if osp.isfile(osp.join(root, MANIFEST)):
        existing = load_manifest(root)
        diff = existing.same_content_as(plan)
        if diff:
            raise TeacherCacheError(
                f'{root} already holds a teacher cache of another config, teacher or layout '
                f'({"; ".join(diff)}); it is kept. Write to another folder (--out), or remove '
                'that one yourself if it is no longer needed.')
    writing = osp.join(root, WRITING)
    if osp.isfile(writing):
        import json
        with open(writing) as f:
            other = CacheManifest.from_json(json.load(f), root=root)
        diff = other.same_content_as(plan)
        if diff:
            raise TeacherCacheError(
                f'{root} holds an unfinished teacher cache of another config ({"; ".join(diff)})'
                '; its shards are kept. Finish it with its own config, write to another folder '
                '(--out), or remove the folder yourself.')
    return existing


def _loader(views, keys: List[Tuple[int, int]], batch_size: int, num_workers: int):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    return DataLoader(views, batch_size=batch_size, sampler=keys, num_workers=num_workers,
                      collate_fn=pseudo_collate, shuffle=False, drop_last=False,
                      persistent_workers=False)


def write_teacher_cache(cfg: Any,
                        out_dir: Optional[str] = None,
                        epochs: int = 1,
                        topk: Optional[int] = DEFAULT_TOPK,
                        dtype: str = 'float16',
                        batch_size: Optional[int] = None,
                        num_workers: Optional[int] = None,
                        shard_size: int = DEFAULT_SHARD_SIZE,
                        device: Optional[str] = None,
                        amp: Optional[str] = None,
                        log_interval: int = 50) -> WriteResult:
    """Run the teacher of a training config over ``epochs`` epochs of its views and store them.

    Args:
        cfg (Config): The training config (see :func:`cache_sources`).
        out_dir (str, optional): Cache folder. Defaults to the ``cache_dir`` of the config's
            ``TeacherCacheDataset``.
        epochs (int): Data epochs to write (>= 1). Defaults to 1.
        topk (int, optional): Classes kept per sample; None or a value above the class count
            keeps all. Defaults to 10.
        dtype (str): ``'float16'`` (default) or ``'float32'`` values.
        batch_size (int, optional): Teacher batch. Defaults to the train batch size.
        num_workers (int, optional): Dataloader workers. Defaults to the train dataloader's.
        shard_size (int): Samples per shard file. Defaults to 10000.
        device (str, optional): Defaults to ``cuda:<LOCAL_RANK>`` with CUDA, else ``cpu``.
        amp (str, optional): Run the teacher under autocast in ``'float16'`` or ``'bfloat16'``
            (as a ``--amp`` training would). Defaults to None (fp32).
        log_interval (int): Log progress every this many batches. Defaults to 50.

    Returns:
        WriteResult: This process's counts and time; ``manifest`` on rank 0.
    """
    from mmscalekd.datasets import SeededViewDataset
    from mmscalekd.registry import MODELS, build_checked

    src = cache_sources(cfg)
    root = out_dir or src.cache_dir
    if not root:
        raise TeacherCacheError('no cache folder: give --out, or use a TeacherCacheDataset '
                                'with cache_dir in the config')
    for name, value, low in (('epochs', epochs, 1), ('shard_size', shard_size, 1),
                             ('log_interval', log_interval, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f'{name} must be an int >= {low}, got {value!r}')
    if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int) or topk < 1):
        raise ValueError(f'topk must be a positive int or None (all classes), got {topk!r}')
    if dtype not in ('float16', 'float32'):
        raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f'amp must be None or one of {sorted(AMP_DTYPES)}, got {amp!r}')
    loader_cfg = _plain(cfg.get('train_dataloader')) or {}
    batch_size = batch_size or loader_cfg.get('batch_size') or 32
    num_workers = loader_cfg.get('num_workers', 0) if num_workers is None else num_workers
    rank, world_size = get_dist_info()
    if device is None:
        device = (f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}' if torch.cuda.is_available()
                  else 'cpu')

    views = SeededViewDataset(src.dataset, seed=src.seed, mix=src.mix, fingerprint=True)
    length = len(views)
    preprocessor = build_checked(MODELS, copy.deepcopy(src.data_preprocessor),
                                 'model.data_preprocessor').to(device)
    teacher = build_teacher(src.teacher, preprocessor).to(device)
    view_id = views.identity()
    teacher_id = dict(teacher_identity(src.teacher), weights_sha256=state_dict_sha256(teacher))
    pre_id = preprocessor_identity(src.data_preprocessor)

    # The class count, from one sample (also checks that the pipeline packs inputs).
    probe = preprocessor(_collate([views[(0, 0)]]), training=False)
    with torch.inference_mode():
        num_classes = int(teacher.forward_targets(probe['inputs'], with_logits=True)
                          .logits.shape[1])
    k = num_classes if topk is None else min(topk, num_classes)
    if topk is not None and topk > num_classes:
        print_log(f'topk={topk} > {num_classes} classes: keeping all {num_classes}',
                  logger='current')
    plan = CacheManifest(views=view_id, teacher=teacher_id, data_preprocessor=pre_id,
                         config_sha256=combined_sha256(view_id, teacher_id, pre_id),
                         dataset_length=length, num_classes=num_classes, epochs=epochs, topk=k,
                         dtype=dtype, shard_size=shard_size, created_with=library_versions(),
                         root=root)
    existing = None
    status: List[Any] = [None, None]  # (epochs already complete, error) from rank 0
    if rank == 0:
        try:
            os.makedirs(root, exist_ok=True)
            existing = _check_existing(root, plan)
            if existing is None or existing.epochs < epochs:
                write_json_atomic(osp.join(root, WRITING), plan.to_json())
            status[0] = None if existing is None else existing.epochs
        except (TeacherCacheError, OSError) as err:
            status[1] = str(err)
    _share(status, world_size)  # every rank stops on rank 0's refusal (no rank left waiting)
    if status[1] is not None:
        raise TeacherCacheError(status[1])
    if status[0] is not None and status[0] >= epochs:
        print_log(f'{root} already holds {status[0]} epoch(s) of this cache; nothing to write',
                  logger='current')
        return WriteResult(root, 0, 0, 0, 0.0, existing if rank == 0 else None)

    ranges = shard_ranges(length, shard_size)
    work = [(e, p) for e in range(epochs) for p in range(len(ranges))]
    rec_dtype = record_dtype(k, num_classes, dtype)
    written = skipped = samples = 0
    start_time = time.perf_counter()
    autocast = (torch.autocast(device_type=torch.device(device).type, dtype=AMP_DTYPES[amp])
                if amp else None)
    for epoch, part in work[rank::world_size]:
        begin, end = ranges[part]
        side = read_sidecar(root, epoch, part)
        if side is not None and (side['start'], side['stop']) == (begin, end):
            skipped += 1
            continue
        records = np.zeros(end - begin, dtype=rec_dtype)
        filled = np.zeros(end - begin, dtype=bool)
        keys = [(epoch, i) for i in range(begin, end)]
        t0 = time.perf_counter()
        for b, batch in enumerate(_loader(views, keys, batch_size, num_workers)):
            data = preprocessor(batch, training=False)
            with torch.inference_mode():
                if autocast is not None:
                    with autocast:
                        logits = teacher.forward_targets(data['inputs'], True).logits
                else:
                    logits = teacher.forward_targets(data['inputs'], True).logits
            fields = encode_topk(logits.float(), k, dtype)
            rows = np.array([s.view_index - begin for s in data['data_samples']])
            records['index'][rows] = fields['index']
            records['logit'][rows] = fields['logit']
            records['lse'][rows] = fields['lse']
            records['crc'][rows] = [s.view_crc for s in data['data_samples']]
            filled[rows] = True
            if (b + 1) % log_interval == 0:
                done = int(filled.sum())
                print_log(f'[rank {rank}] epoch {epoch} shard {part}: {done}/{end - begin} '
                          f'({done / (time.perf_counter() - t0):.1f} samples/s)',
                          logger='current')
        if not filled.all():
            raise RuntimeError(f'shard {part} of epoch {epoch}: {int((~filled).sum())} samples '
                               'were not produced by the dataloader')
        write_shard(root, epoch, part, begin, records)
        written += 1
        samples += end - begin
        print_log(f'[rank {rank}] wrote epoch {epoch} shard {part} ({end - begin} samples, '
                  f'{(end - begin) / (time.perf_counter() - t0):.1f} samples/s)',
                  logger='current')
    seconds = time.perf_counter() - start_time
    barrier()

    manifest = None
    final: List[Any] = [None]
    if rank == 0:
        shards = []
        for epoch, part in work:
            side = read_sidecar(root, epoch, part)
            if side is None:
                final[0] = (f'{root}: shard {part} of epoch {epoch} is missing after every '
                            'process finished; run the writer again')
                break
            shards.append(side)
    _share(final, world_size)
    if final[0] is not None:
        raise TeacherCacheError(final[0])
    if rank == 0:
        plan.shards = shards
        plan.writer = dict(world_size=world_size, device=str(device), amp=amp,
                           batch_size=batch_size, num_workers=num_workers,
                           rank0_seconds=round(seconds, 3), rank0_samples=samples)
        manifest = plan
        write_json_atomic(osp.join(root, MANIFEST), plan.to_json())
        try:
            os.remove(osp.join(root, WRITING))
        except FileNotFoundError:
            pass
        print_log(f'teacher cache {root}: {epochs} epoch(s) x {length} samples, top-{k} of '
                  f'{num_classes} classes in {dtype}, {plan.record_bytes} bytes per sample and '
                  f'epoch', logger='current')
    barrier()
    return WriteResult(root, written, skipped, samples, seconds, manifest)


def _share(values: List[Any], world_size: int) -> None:
    """Broadcast rank 0's ``values`` to every rank (in place), then wait for all."""
    if world_size > 1:
        broadcast_object_list(values, src=0)
    barrier()


def _collate(samples: list) -> dict:
    from mmengine.dataset import pseudo_collate
    return pseudo_collate(samples)


def derive_cache(cfg: Any, source: str, out_dir: Optional[str] = None,
                 topk: Optional[int] = DEFAULT_TOPK, dtype: str = 'float16') -> CacheManifest:
    """Write a smaller cache (fewer classes kept, or fp16 instead of fp32) from an existing one.

    The teacher is not run: every record keeps the first ``topk`` of its (sorted) classes, its
    ``lse`` and fingerprint. A cache written once with all classes in fp32 thus gives the caches
    of every smaller ``topk`` exactly as the writer would have made them (up to the fp16
    rounding, which is the same operation on the same float32 values).

    Args:
        cfg (Config): The training config; ``source`` must be its cache.
        source (str): Folder of the existing cache.
        out_dir (str, optional): New cache folder. Defaults to the config's ``cache_dir``.
        topk (int, optional): Classes kept; at most the source's. None keeps all of them.
        dtype (str): ``'float16'`` or ``'float32'`` (the latter only from a float32 source).

    Returns:
        CacheManifest: The new cache's manifest.
    """
    src = cache_sources(cfg)
    root = out_dir or src.cache_dir
    if not root:
        raise TeacherCacheError('no cache folder: give --out, or use a TeacherCacheDataset '
                                'with cache_dir in the config')
    if osp.abspath(root) == osp.abspath(source):
        raise TeacherCacheError(f'the new cache must go to another folder than {source}')
    old = load_manifest(source)
    old.check_shards()
    from .manifest import view_identity
    old.check_views(view_identity(src.dataset, src.seed, src.mix), old.dataset_length)
    old.check_teacher(teacher_identity(src.teacher))
    old.check_preprocessor(preprocessor_identity(src.data_preprocessor))
    k = old.topk if topk is None else topk
    if k > old.topk:
        raise TeacherCacheError(f'{source} keeps {old.topk} classes per sample; a cache with '
                                f'topk={k} needs the teacher: run the writer instead')
    if dtype not in ('float16', 'float32'):
        raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
    if dtype == 'float32' and old.dtype != 'float32':
        raise TeacherCacheError(f'{source} is {old.dtype}: a float32 cache cannot be derived '
                                'from it')
    plan = CacheManifest(**{**{f: getattr(old, f) for f in CacheManifest.__dataclass_fields__},
                            'topk': k, 'dtype': dtype, 'shards': [], 'root': root,
                            'writer': dict(derived_from=osp.abspath(source),
                                           source_topk=old.topk, source_dtype=old.dtype)})
    os.makedirs(root, exist_ok=True)
    existing = _check_existing(root, plan)
    if existing is not None and existing.epochs >= plan.epochs:
        return existing
    write_json_atomic(osp.join(root, WRITING), plan.to_json())
    new_dtype = plan.record_dtype
    for side in old.shards:
        records = old.open_part(side['epoch'], side['part'])
        out = np.zeros(len(records), dtype=new_dtype)
        out['index'] = records['index'][:, :k]
        out['logit'] = records['logit'][:, :k].astype(new_dtype['logit'].base)
        out['lse'] = records['lse']
        out['crc'] = records['crc']
        plan.shards.append(write_shard(root, side['epoch'], side['part'], side['start'], out))
    write_json_atomic(osp.join(root, MANIFEST), plan.to_json())
    os.remove(osp.join(root, WRITING))
    return plan
