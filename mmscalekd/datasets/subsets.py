"""Seeded, per-class (stratified) subsets of a labeled dataset.

A label-scarce experiment draws its labeled images per class, so that 200 labels of 10 balanced
classes are 20 per class, not the 12-27 per class that the first 200 images of a shuffled set
happen to hold. Subsets nest: the labeled images are drawn from the pool, the pool from the split.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def _class_quotas(counts: np.ndarray, size: int) -> np.ndarray:
    """Per-class sizes proportional to ``counts`` that sum to ``size`` (largest remainder).

    When ``size`` is at least the number of non-empty classes, every such class gets one
    image or more.
    """
    n = int(counts.sum())
    exact = counts * (size / n)
    quotas = np.floor(exact).astype(np.int64)
    # Largest remainders first; ties go to the lower class index (stable sort).
    order = np.argsort(-(exact - quotas), kind='stable')
    quotas[order[:size - int(quotas.sum())]] += 1
    present = counts > 0
    if size >= int(present.sum()):
        for k in np.flatnonzero(present & (quotas == 0)):
            donor = int(np.argmax(quotas))  # the largest quota gives one image away
            quotas[donor] -= 1
            quotas[k] = 1
    return quotas


def stratified_subset(labels: Sequence[int], size: int, seed: int = 0) -> np.ndarray:
    """Draw ``size`` indices per class, in proportion to the class sizes, without replacement.

    Class ``k`` with ``c_k`` of the ``n`` images gets ``size * c_k / n`` of them, rounded by the
    largest remainder so that the sizes sum to ``size``; every class gets at least one image
    when ``size`` is at least the number of classes. Within a class the images are a uniform
    random draw of a ``numpy.random.default_rng(seed)`` generator, so the subset depends only on
    ``labels``, ``size`` and ``seed``.

    Args:
        labels (Sequence[int]): ``(N,)`` class index of every image.
        size (int): How many indices to draw, ``1 <= size <= N``.
        seed (int): Seed of the draw. Defaults to 0.

    Returns:
        np.ndarray: ``(size,)`` int64 indices into ``labels``, sorted (the dataset's order).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f'labels must be 1-D (one class index per image), got shape '
                         f'{labels.shape}')
    n = len(labels)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= n:
        raise ValueError(f'subset size must be an int in [1, {n}] (the number of images), '
                         f'got {size!r}')
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f'seed must be an int, got {seed!r}')
    if size == n:
        return np.arange(n, dtype=np.int64)
    classes, inverse = np.unique(labels, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(classes))
    quotas = _class_quotas(counts, int(size))
    rng = np.random.default_rng(int(seed))
    chosen = []
    for k in range(len(classes)):
        members = np.flatnonzero(inverse == k)
        if quotas[k]:
            chosen.append(rng.choice(members, size=int(quotas[k]), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def nested_stratified_subset(labels: Sequence[int], sizes: Sequence[Optional[int]],
                             seed: int = 0, complement: bool = False) -> np.ndarray:
    """Stratified subsets of stratified subsets: ``sizes[i + 1]`` images drawn from ``sizes[i]``.

    ``sizes=(10000, 500)`` draws a pool of 10,000 images per class, then 500 labeled images per
    class from that pool, so the labeled images always lie inside the pool. ``None`` keeps the
    whole previous level. Each level uses its own random stream of ``seed``.

    Args:
        labels (Sequence[int]): ``(N,)`` class index of every image.
        sizes (Sequence[int | None]): Size of each level, outermost first. Empty: everything.
        seed (int): Seed of the draws. Defaults to 0.
        complement (bool): Return the images of the second-to-last level that are *not* in the
            last one (e.g. the training images outside a held-out slice). Defaults to False.

    Returns:
        np.ndarray: Sorted int64 indices into ``labels``.
    """
    labels = np.asarray(labels)
    if isinstance(sizes, (int, str)) or not isinstance(sizes, Sequence):
        raise TypeError(f'sizes must be a sequence of ints or None (outermost first), '
                        f'got {sizes!r}')
    if complement and not sizes:
        raise ValueError('complement=True needs at least one subset size (the part to leave out)')
    current = np.arange(len(labels), dtype=np.int64)
    parent = current
    for level, size in enumerate(sizes):
        parent = current
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or \
                not 1 <= size <= len(current):
            raise ValueError(
                f'subset size #{level} must be an int in [1, {len(current)}] (the images left '
                f'after the previous level{"s" if level else ""}) or None, got {size!r} '
                f'in sizes={tuple(sizes)!r}')
        rng_seed = int(np.random.SeedSequence([int(seed), level]).generate_state(1)[0])
        current = current[stratified_subset(labels[current], int(size), seed=rng_seed)]
    if complement:
        return np.setdiff1d(parent, current, assume_unique=True).astype(np.int64)
    return current
