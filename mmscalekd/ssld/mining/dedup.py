"""Near-duplicate search against the validation set: pHash Hamming and feature cosine, batched.

The validation hashes and features are indexed once (:class:`NearDuplicateIndex`); every pool
batch is then compared with all of them at once, in blocks: Hamming distances of packed 64-bit
hashes with ``numpy.bitwise_count`` (numpy >= 2.0), cosines as one matrix product on the
scoring device. ``tools/analysis_tools/benchmark_dedup.py`` measures the throughput.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

#: Bits of the perceptual hash (imagehash's default 8 x 8).
HASH_BITS = 64
#: Recorded with the parts: which hash function made the stored hashes.
HASH_FUNCTION = 'imagehash.phash(hash_size=8, highfreq_factor=4) on the loaded image'


def phash64(image: Union[Image.Image, np.ndarray]) -> np.uint64:
    """The 64-bit perceptual hash of an image (``imagehash.phash``), packed into a ``uint64``.

    Args:
        image (Image.Image | np.ndarray): A PIL image, or an image as loaded by
            ``LoadImageFromFile``: ``(H, W)`` grey or ``(H, W, 3)`` BGR (``(H, W, 4)``
            BGRA keeps its BGR channels); other dtypes than uint8 are clipped to 0-255.

    Returns:
        np.uint64: The hash bits, first bit most significant (``imagehash``'s order).
    """
    import imagehash
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] in (3, 4):
            image = Image.fromarray(np.ascontiguousarray(arr[..., 2::-1]), 'RGB')
        elif arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
            image = Image.fromarray(arr.reshape(arr.shape[:2]), 'L')
        else:
            raise ValueError(f'cannot hash an image array of shape {arr.shape}; expected '
                             '(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)')
    bits = np.asarray(imagehash.phash(image).hash, dtype=bool).reshape(-1)
    return np.frombuffer(np.packbits(bits).tobytes(), dtype='>u8')[0].astype(np.uint64)


def hamming_nearest(queries: np.ndarray, refs: np.ndarray, max_distance: int = HASH_BITS,
                    block: int = 1 << 20) -> Tuple[np.ndarray, np.ndarray]:
    """Nearest reference hash of every query hash, brute force in blocks.

    Args:
        queries (np.ndarray): ``(B,)`` uint64 hashes.
        refs (np.ndarray): ``(N,)`` uint64 hashes, N >= 1.
        max_distance (int): The index of the nearest reference is only looked up for the
            queries whose distance is ``<=`` this (the others get -1), which saves an
            ``argmin`` over each block. Defaults to 64 (all).
        block (int): Query x reference pairs per block (bounds the temporary memory: 9 bytes
            per pair). Defaults to 1 M, the fastest of 1, 4 and 16 M on our CPU.

    Returns:
        Tuple[np.ndarray, np.ndarray]: ``(index, distance)``, both ``(B,)`` int64: the first
        nearest reference (-1 where the distance exceeds ``max_distance``) and its Hamming
        distance.
    """
    queries = np.ascontiguousarray(queries, dtype=np.uint64)
    refs = np.ascontiguousarray(refs, dtype=np.uint64)
    if refs.size == 0:
        raise ValueError('hamming_nearest needs at least one reference hash')
    best = np.full(len(queries), HASH_BITS + 1, dtype=np.uint8)
    arg = np.full(len(queries), -1, dtype=np.int64)
    cols = max(1, min(len(refs), block // max(1, len(queries))))
    for start in range(0, len(refs), cols):
        dist = np.bitwise_count(np.bitwise_xor(queries[:, None], refs[None, start:start + cols]))
        d = dist.min(axis=1)
        better = (d < best) & (d <= max_distance)
        if better.any():
            arg[better] = dist[better].argmin(axis=1) + start
        np.minimum(best, d, out=best)
    return arg, best.astype(np.int64)


@dataclass
class DuplicateMatches:
    """Which images of a batch match a validation image.

    Attributes:
        dup (np.ndarray): ``(B,)`` bool, a near-duplicate of a validation image.
        dup_of (np.ndarray): ``(B,)`` int64, index of the matched validation image (-1: none).
        distance (np.ndarray): ``(B,)`` float32, the pHash Hamming distance or the cosine of
            the match (0 when none).
        kind (np.ndarray): ``(B,)`` int8, 1 = pHash match, 2 = feature match, 0 = none.
    """

    dup: np.ndarray
    dup_of: np.ndarray
    distance: np.ndarray
    kind: np.ndarray


class NearDuplicateIndex:
    """The validation hashes and features, indexed once, queried batch by batch.

    Unreadable validation images (``valid=False``) match nothing. A pHash match takes
    precedence over a feature match of the same image.

    Args:
        hashes (np.ndarray, optional): ``(N,)`` uint64 pHashes, or None (no pHash check).
        features (Tensor | np.ndarray, optional): ``(N, D)`` features, or None (no feature
            check); L2-normalised here.
        valid (np.ndarray, optional): ``(N,)`` bool, which validation images were read.
            Defaults to all.
        phash_threshold (int): Duplicate if the Hamming distance is ``<=`` this. Defaults to 4.
        cosine_threshold (float): Duplicate if the cosine is ``>=`` this. Defaults to 0.95.
        device (str | torch.device): Where the cosines are computed (the scoring device).
            Defaults to ``'cpu'``.
        block (int): Query x reference pairs per block. Defaults to 1 M.
    """

    def __init__(self,
                 hashes: Optional[np.ndarray] = None,
                 features: Optional[Union[Tensor, np.ndarray]] = None,
                 valid: Optional[np.ndarray] = None,
                 phash_threshold: int = 4,
                 cosine_threshold: float = 0.95,
                 device: Union[str, torch.device] = 'cpu',
                 block: int = 1 << 20) -> None:
        n = len(hashes) if hashes is not None else (len(features) if features is not None
                                                    else 0)
        valid = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        if len(valid) != n or (hashes is not None and features is not None
                               and len(features) != n):
            raise ValueError(f'hashes, features and valid must have the same length, got '
                             f'{None if hashes is None else len(hashes)}, '
                             f'{None if features is None else len(features)}, {len(valid)}')
        self.ids = np.flatnonzero(valid).astype(np.int64)  # index into the full val list
        self.phash_threshold = int(phash_threshold)
        self.cosine_threshold = float(cosine_threshold)
        self.device = torch.device(device)
        self.block = int(block)
        self.hashes = (np.ascontiguousarray(np.asarray(hashes, dtype=np.uint64)[self.ids])
                       if hashes is not None else None)
        self.features: Optional[Tensor] = None
        if features is not None:
            f = torch.as_tensor(np.asarray(features) if isinstance(features, np.ndarray)
                                else features)
            f = torch.nn.functional.normalize(f.float()[torch.from_numpy(self.ids)], dim=1)
            # half precision on accelerators halves the memory of a 50k x D index
            self.features = f.to(self.device,
                                 torch.float16 if self.device.type == 'cuda' else torch.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def query(self, hashes: Optional[np.ndarray] = None,
              features: Optional[Tensor] = None) -> DuplicateMatches:
        """Match a batch against the index.

        Args:
            hashes (np.ndarray, optional): ``(B,)`` uint64; needed when the index has hashes.
            features (Tensor, optional): ``(B, D)``; needed when the index has features.

        Returns:
            DuplicateMatches: Per image of the batch.
        """
        b = len(hashes) if hashes is not None else (len(features) if features is not None
                                                    else 0)
        out = DuplicateMatches(dup=np.zeros(b, bool), dup_of=np.full(b, -1, np.int64),
                               distance=np.zeros(b, np.float32), kind=np.zeros(b, np.int8))
        if b == 0 or len(self.ids) == 0:
            return out
        if self.hashes is not None:
            if hashes is None or len(hashes) != b:
                raise ValueError('this index compares pHashes: pass the batch hashes')
            j, d = hamming_nearest(np.asarray(hashes, np.uint64), self.hashes,
                                   self.phash_threshold, self.block)
            hit = d <= self.phash_threshold
            out.dup[hit], out.dup_of[hit] = True, self.ids[j[hit]]
            out.distance[hit], out.kind[hit] = d[hit], 1
        if self.features is not None:
            if features is None or len(features) != b:
                raise ValueError('this index compares features: pass the batch features')
            q = torch.nn.functional.normalize(features.float(), dim=1).to(self.features)
            best = torch.full((b, ), -2.0, device=self.device)
            arg = torch.zeros(b, dtype=torch.long, device=self.device)
            cols = max(1, min(len(self.ids), self.block // b))
            for start in range(0, len(self.ids), cols):
                cos = (q @ self.features[start:start + cols].T).float()
                c, j = cos.max(dim=1)
                better = c > best
                best = torch.where(better, c, best)
                arg = torch.where(better, j + start, arg)
            best, arg = best.cpu().numpy(), arg.cpu().numpy()
            hit = ~out.dup & (best >= self.cosine_threshold)
            out.dup[hit], out.dup_of[hit] = True, self.ids[arg[hit]]
            out.distance[hit], out.kind[hit] = best[hit], 2
        return out
