"""Per-(sample, epoch) seeds for the data pipeline, and view fingerprints.

A view is re-created exactly by running the pipeline with Python's, NumPy's and torch's global
generators seeded from ``(seed, epoch, index)``: mmcv / mmpretrain transforms draw from
``numpy.random`` (``RandomResizedCrop``, ``RandomFlip``, ``RandAugment``, ``RandomErasing``),
torchvision transforms from torch and some wrappers from ``random``. The seed depends on the
sample and epoch only, not on the sampler order, the batch, the worker or the process, so a view
is the same in the cache writer, in training, in every DDP rank and after a resume.
"""
from __future__ import annotations

import contextlib
import hashlib
import random
import struct
import zlib
from typing import Iterator, Tuple

import numpy as np
import torch
from torch.utils.data import get_worker_info

#: Streams of the per-sample seed sequence.
STREAM_PIPELINE = 0
STREAM_MIX = 1
STREAM_MIX_BOX = 2


def view_seed(seed: int, epoch: int, index: int, stream: int = STREAM_PIPELINE) -> Tuple[int, int]:
    """Two 32-bit words for one sample, epoch and stream.

    The words are the BLAKE2b digest of the four numbers, so neighbouring samples and epochs get
    unrelated seeds (a cryptographic hash, ~1 us; NumPy's ``SeedSequence`` took ~40 us here).

    Args:
        seed (int): The run's view seed (>= 0).
        epoch (int): Data epoch (>= 0).
        index (int): Dataset index (>= 0).
        stream (int): Which random stream (pipeline, mixing, ...). Defaults to the pipeline's.

    Returns:
        tuple[int, int]: Two words in ``[0, 2**32)``.
    """
    key = struct.pack('<4Q', int(seed), int(epoch), int(index), int(stream))
    return struct.unpack('<2I', hashlib.blake2b(key, digest_size=8,
                                                person=b'mmscalekd-view').digest())


@contextlib.contextmanager
def seeded_global_rng(words: Tuple[int, int]) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's (CPU) global generators for one view.

    In the main process (``num_workers=0``, or the cache writer's probe) the previous states are
    restored afterwards, so that the program's own random streams (dropout, stochastic depth,
    the sampler) are exactly as without this call. In a dataloader worker every draw belongs to
    the pipeline and each view re-seeds, so nothing is saved or restored there (saving NumPy's
    state costs ~50 us).

    Args:
        words (tuple[int, int]): From :func:`view_seed`.
    """
    restore = get_worker_info() is None
    if restore:
        py_state = random.getstate()
        np_state = np.random.get_state()
        torch_state = torch.random.get_rng_state()
    random.seed(words[0])
    np.random.seed(words[0])
    # The CPU generator only: CUDA streams (dropout on the GPU) stay untouched.
    torch.default_generator.manual_seed(words[0] | (words[1] << 32))
    try:
        yield
    finally:
        if restore:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.random.set_rng_state(torch_state)


def view_fingerprint(inputs: torch.Tensor) -> int:
    """CRC-32 of a view's dtype, shape and bytes: the cache stores it, training compares it.

    Args:
        inputs (Tensor): A packed view, e.g. ``(C, H, W)`` uint8.

    Returns:
        int: In ``[0, 2**32)``.
    """
    array = inputs.detach().cpu().contiguous().numpy()
    head = f'{array.dtype.str}{array.shape}'.encode('ascii')
    return zlib.crc32(array.reshape(-1).view(np.uint8), zlib.crc32(head)) & 0xFFFFFFFF
