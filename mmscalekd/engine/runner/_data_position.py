"""Helpers shared by the resumable train loops: find the hook, reopen an epoch part-way."""
from __future__ import annotations

import warnings
from typing import Any, Dict, Iterator, Optional

from torch.utils.data import DataLoader

from .resume_state import restore_rng_state


def resume_hook(runner, loop_name: str):
    """The runner's :class:`ExactResumeHook`, or None (with a warning) if the config has none.

    The hook is never registered behind the user's back: without it a resumed loop still
    continues at the data position of the checkpoint (from its iteration count), but the
    RNG states start from the seed.
    """
    from ..hooks.exact_resume_hook import ExactResumeHook
    for hook in runner.hooks:
        if isinstance(hook, ExactResumeHook):
            return hook
    warnings.warn(
        f'{loop_name}: the config lists no ExactResumeHook, so a resume continues at the '
        'data position of the checkpoint but without its RNG states (augmentation, drop '
        "path). Add custom_hooks=[dict(type='ExactResumeHook')] for an exact resume "
        '(docs/reliability.md).')
    return None


def resume_state(hook, positioned: bool, current_iter: int,
                 batches_per_epoch: int) -> Optional[Dict[str, Any]]:
    """Where a resumed loop continues: the hook's state (data position and RNG states), or
    without a hook the position alone, once (``positioned``: already done)."""
    if hook is not None:
        return hook.pop_resume_state(current_iter, batches_per_epoch)
    if positioned or current_iter == 0:
        return None
    return dict(iter=current_iter, rng=None)


def sampler_of(dataloader: DataLoader) -> Any:
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    sampler = getattr(batch_sampler, 'sampler', None)
    return sampler if sampler is not None else getattr(dataloader, 'sampler', None)


def open_epoch(dataloader: DataLoader, skip_batches: int,
               rng: Optional[Dict[str, Any]]) -> Iterator:
    """An iterator over the current epoch that starts after ``skip_batches`` batches.

    The RNG states are restored at the point the original run was at when it
    saved them: for ``skip_batches > 0`` the epoch's iterator already existed
    (its creation draws a worker base seed from the torch RNG), so the states
    are restored after creating it; for ``skip_batches == 0`` the original run
    saved before the epoch began, so they are restored first.

    With a sampler that has ``start_at`` (:class:`ResumableSampler`) the
    consumed samples are skipped without loading them; otherwise the consumed
    batches are loaded and discarded (same result, slower).

    Args:
        dataloader (DataLoader): The train dataloader (sampler epoch already set).
        skip_batches (int): Batches of this epoch already trained on.
        rng (dict, optional): This rank's saved RNG states, or None.
    """
    if rng is not None and skip_batches == 0:
        restore_rng_state(rng)
    sampler = sampler_of(dataloader)
    batch_size = dataloader.batch_size or getattr(dataloader.batch_sampler, 'batch_size', None)
    if skip_batches and hasattr(sampler, 'start_at') and batch_size:
        sampler.start_at(min(skip_batches * batch_size, len(sampler)))
        iterator = iter(dataloader)
    else:
        iterator = iter(dataloader)
        for _ in range(skip_batches):
            next(iterator)
    if rng is not None and skip_batches > 0:
        restore_rng_state(rng)
    return iterator
