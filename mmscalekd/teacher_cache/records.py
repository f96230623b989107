"""The per-sample record of the teacher cache and the shard files that hold them.

One record per (sample, epoch), a NumPy structured array row of ``4k + 8`` bytes in fp16
(``8k + 8`` in fp32, for ``num_classes <= 32767``):

* ``index`` ``(k,)`` int16 (int32 above 32767 classes): the teacher's top-k classes, in
  descending order;
* ``logit`` ``(k,)`` fp16 / fp32: their logits minus the sample's largest logit
  (``z_i - max_j z_j``, so the top-1 value is exactly 0 and fp16 keeps the most precision where
  the probability mass is);
* ``lse`` fp32: ``log sum_j exp(z_j - max z)`` over *all* classes, so that the top-k
  probabilities ``exp(logit - lse)`` and the mass left outside them are known exactly;
* ``crc`` uint32: the view's fingerprint (:func:`~mmscalekd.teacher_cache.view_fingerprint`).

A shard holds the records of one epoch and one contiguous index range, as an ``.npy`` file
(memory-mapped when read) with a JSON sidecar written after it (rows, range, SHA-256): a shard
without its sidecar is incomplete and written again.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from mmscalekd.utils.atomic_checkpoint import atomic_write_text
from mmscalekd.utils.atomic_io import replace_atomically

#: Value dtypes a cache can be written in.
VALUE_DTYPES = {'float16': np.float16, 'float32': np.float32}
#: Probability mass given to the classes outside the top-k when the rest rounds to <= 0.
REST_FLOOR = 1e-12


def index_dtype(num_classes: int) -> np.dtype:
    """int16 up to 32767 classes (ImageNet-22k's 21841 fit), int32 above."""
    return np.dtype('<i2') if num_classes <= np.iinfo(np.int16).max else np.dtype('<i4')


def record_dtype(topk: int, num_classes: int, dtype: str = 'float16') -> np.dtype:
    """The structured dtype of one record.

    Args:
        topk (int): Classes kept per sample, ``1 <= topk <= num_classes``.
        num_classes (int): Classes of the teacher.
        dtype (str): ``'float16'`` or ``'float32'`` (values). Defaults to ``'float16'``.
    """
    if dtype not in VALUE_DTYPES:
        raise ValueError(f'dtype must be one of {sorted(VALUE_DTYPES)}, got {dtype!r}')
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= num_classes:
        raise ValueError(f'topk must be an int in [1, {num_classes}] (the teacher has '
                         f'{num_classes} classes), got {topk!r}')
    value = np.dtype(VALUE_DTYPES[dtype]).newbyteorder('<')
    return np.dtype([('index', index_dtype(num_classes), (topk, )), ('logit', value, (topk, )),
                     ('lse', '<f4'), ('crc', '<u4')])


def encode_topk(logits: Tensor, topk: int, dtype: str = 'float16') -> Dict[str, np.ndarray]:
    """Top-k record fields of a batch of teacher logits.

    Args:
        logits (Tensor): ``(B, K)`` teacher logits.
        topk (int): Classes to keep.
        dtype (str): ``'float16'`` or ``'float32'``.

    Returns:
        dict: ``index`` ``(B, k)``, ``logit`` ``(B, k)`` and ``lse`` ``(B,)`` NumPy arrays
        (``crc`` is filled by the caller).
    """
    if logits.dim() != 2:
        raise ValueError(f'logits must be (B, K), got shape {tuple(logits.shape)}')
    rec = record_dtype(topk, logits.shape[1], dtype)
    z = logits.detach().float()
    shifted = z - z.max(dim=1, keepdim=True).values
    lse = torch.logsumexp(shifted, dim=1)
    values, indices = shifted.topk(topk, dim=1, largest=True, sorted=True)
    return dict(index=indices.cpu().numpy().astype(rec['index'].base),
                logit=values.cpu().numpy().astype(rec['logit'].base),
                lse=lse.cpu().numpy().astype(np.float32))


def decode_dense_logits(index: np.ndarray, logit: np.ndarray, lse: float,
                        num_classes: int) -> Tensor:
    """Full ``(K,)`` logits (up to a constant) of one record.

    ``softmax`` of the result is the teacher's distribution: exact on the top-k classes, and the
    remaining mass ``1 - sum_topk p`` (known from ``lse``) is spread uniformly over the other
    ``K - k`` classes (the ``'smooth'`` densification of apple/ml-dr ``dr/utils.py``; TinyViT,
    arXiv 2207.10666 Sec. 3.1, does the same with its sparse labels). With ``k == K`` the
    stored values are returned as they are: ``z - max z``, which every softmax-based loss treats
    exactly like ``z``.

    Args:
        index (ndarray): ``(k,)`` class indices.
        logit (ndarray): ``(k,)`` max-shifted logits.
        lse (float): ``log sum exp`` of all max-shifted logits.
        num_classes (int): ``K``.

    Returns:
        Tensor: ``(K,)`` float32.
    """
    values = torch.from_numpy(np.asarray(logit, dtype=np.float32))
    idx = torch.from_numpy(np.asarray(index, dtype=np.int64))
    k = values.numel()
    if k == num_classes:
        out = torch.empty(num_classes, dtype=torch.float32)
        out[idx] = values
        return out
    lse_t = torch.tensor(float(lse), dtype=torch.float32)
    log_top = torch.logsumexp(values, dim=0) - lse_t  # log of the top-k mass (<= 0)
    rest = float(-torch.expm1(torch.clamp(log_top, max=0.0)))
    rest = max(rest, REST_FLOOR)
    fill = float(np.log(rest / (num_classes - k))) + float(lse)
    out = torch.full((num_classes, ), fill, dtype=torch.float32)
    out[idx] = values
    return out


# --------------------------------------------------------------------------------- shards
def shard_file(epoch: int, part: int) -> str:
    """Path of a shard relative to the cache folder."""
    return osp.join(f'epoch_{epoch:04d}', f'part_{part:05d}.npy')


def write_json_atomic(path: str, obj: dict) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never half a file)."""
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + '\n')


def write_shard(root: str, epoch: int, part: int, start: int, records: np.ndarray) -> dict:
    """Write one shard and then its sidecar, each atomically.

    Args:
        root (str): The cache folder.
        epoch (int): Data epoch.
        part (int): Shard number within the epoch.
        start (int): Dataset index of the first record.
        records (ndarray): Structured records, one per index ``start, start + 1, ...``.

    Returns:
        dict: The sidecar (``file``, ``epoch``, ``part``, ``start``, ``stop``, ``bytes``,
        ``sha256``).
    """
    import hashlib
    rel = shard_file(epoch, part)
    path = osp.join(root, rel)
    replace_atomically(path, lambda f: np.save(f, records, allow_pickle=False))
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 22), b''):
            digest.update(block)
    side = dict(file=rel, epoch=int(epoch), part=int(part), start=int(start),
                stop=int(start + len(records)), bytes=int(osp.getsize(path)),
                sha256=digest.hexdigest())
    write_json_atomic(path + '.json', side)
    return side


def read_sidecar(root: str, epoch: int, part: int) -> Optional[dict]:
    """The sidecar of a complete shard, or None if the shard is missing or incomplete."""
    path = osp.join(root, shard_file(epoch, part))
    try:
        with open(path + '.json') as f:
            side = json.load(f)
    except (OSError, ValueError):
        return None
    if not osp.isfile(path) or osp.getsize(path) != side.get('bytes'):
        return None
    return side


def open_shard(root: str, rel: str, dtype: np.dtype, rows: int) -> np.ndarray:
    """Memory-map a shard and check its record layout and length.

    Args:
        root (str): The cache folder.
        rel (str): Shard path relative to it.
        dtype (np.dtype): Expected record dtype.
        rows (int): Expected number of records.
    """
    path = osp.join(root, rel)
    array = np.load(path, mmap_mode='r', allow_pickle=False)
    if array.dtype != dtype or array.shape != (rows, ):
        raise ValueError(f'teacher cache shard {path} holds {array.shape} records of '
                         f'{array.dtype}, the manifest says {rows} of {dtype}; the cache is '
                         'damaged: write it again with tools/write_teacher_cache.py.')
    return array


def shard_ranges(length: int, shard_size: int) -> Tuple[Tuple[int, int], ...]:
    """``(start, stop)`` of every shard of an epoch."""
    return tuple((s, min(s + shard_size, length)) for s in range(0, length, shard_size))
