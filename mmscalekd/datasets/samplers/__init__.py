"""Data samplers."""
from .epoch_tagged_sampler import EpochTaggedSampler
from .resumable_sampler import ResumableSampler

__all__ = ['ResumableSampler', 'EpochTaggedSampler']
