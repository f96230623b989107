"""Datasets: small image sets with stratified subsets, unlabeled image folders, labeled+unlabeled
concatenation (SSLD), seeded views and the teacher cache, transforms."""
from .array_fashion_mnist import ArrayFashionMNIST
from .data_root import follow_data_root
from .image_set import ImageSet, load_image_set
from .labeled_unlabeled_dataset import LabeledUnlabeledDataset
from .samplers import EpochTaggedSampler, ResumableSampler
from .seeded_view_dataset import SeededViewDataset
from .small_image_dataset import SmallImageDataset
from .subsets import nested_stratified_subset, stratified_subset
from .teacher_cache_dataset import TeacherCacheDataset
from .transforms import LoadImageFromFileOrSkip
from .unlabeled_image_folder import UnlabeledImageFolder

__all__ = [
    'ArrayFashionMNIST', 'LabeledUnlabeledDataset', 'UnlabeledImageFolder', 'ResumableSampler',
    'LoadImageFromFileOrSkip', 'EpochTaggedSampler', 'SeededViewDataset', 'TeacherCacheDataset',
    'SmallImageDataset', 'ImageSet', 'load_image_set', 'stratified_subset',
    'nested_stratified_subset', 'follow_data_root'
]
