"""Datasets: unlabeled image folders, labeled+unlabeled concatenation (SSLD), seeded views and
the teacher cache, transforms."""
from .array_fashion_mnist import ArrayFashionMNIST
from .labeled_unlabeled_dataset import LabeledUnlabeledDataset
from .samplers import EpochTaggedSampler, ResumableSampler
from .seeded_view_dataset import SeededViewDataset
from .teacher_cache_dataset import TeacherCacheDataset
from .transforms import LoadImageFromFileOrSkip
from .unlabeled_image_folder import UnlabeledImageFolder

__all__ = [
    'ArrayFashionMNIST', 'LabeledUnlabeledDataset', 'UnlabeledImageFolder', 'ResumableSampler',
    'LoadImageFromFileOrSkip', 'EpochTaggedSampler', 'SeededViewDataset', 'TeacherCacheDataset'
]
