"""Datasets: unlabeled image folders, labeled+unlabeled concatenation (SSLD), transforms."""
from .array_fashion_mnist import ArrayFashionMNIST
from .labeled_unlabeled_dataset import LabeledUnlabeledDataset
from .samplers import ResumableSampler
from .transforms import LoadImageFromFileOrSkip
from .unlabeled_image_folder import UnlabeledImageFolder

__all__ = [
    'ArrayFashionMNIST', 'LabeledUnlabeledDataset', 'UnlabeledImageFolder', 'ResumableSampler',
    'LoadImageFromFileOrSkip'
]
