"""ArrayFashionMNIST: same samples as mmpretrain's FashionMNIST, decoded once, cache invalidated."""
from __future__ import annotations

import os

import numpy as np
import pytest

from mmscalekd.datasets import ArrayFashionMNIST
from mmscalekd.datasets.array_fashion_mnist import read_idx_cached
from mmscalekd.registry import DATASETS
from tests._builders import FMNIST_FILES as FILES
from tests._builders import write_fake_fashion_mnist, write_idx


@pytest.fixture()
def idx_root(tmp_path):
    train = write_fake_fashion_mnist(str(tmp_path), 'train', 12, seed=0)
    test = write_fake_fashion_mnist(str(tmp_path), 'test', 5, seed=1)
    return str(tmp_path), train, test


def test_samples_match_hand_written_files_and_mmpretrain(idx_root) -> None:
    from mmpretrain.datasets import FashionMNIST
    root, (train_imgs, train_labels), (test_imgs, test_labels) = idx_root
    for test_mode, imgs, labels in ((False, train_imgs, train_labels),
                                    (True, test_imgs, test_labels)):
        ours = ArrayFashionMNIST(data_root=root, split='test' if test_mode else 'train',
                                 test_mode=test_mode, download=False, pipeline=[])
        ref = FashionMNIST(data_root=root, split='test' if test_mode else 'train',
                           test_mode=test_mode, download=False, pipeline=[])
        assert len(ours) == len(ref) == len(imgs)
        for i in range(len(imgs)):
            a, b = ours.get_data_info(i), ref.get_data_info(i)
            np.testing.assert_array_equal(a['img'], imgs[i])
            np.testing.assert_array_equal(a['img'], b['img'])
            assert a['img'].dtype == b['img'].dtype == np.uint8
            assert a['gt_label'].shape == b['gt_label'].shape == ()
            assert a['gt_label'].dtype == b['gt_label'].dtype == np.int64
            assert int(a['gt_label']) == int(b['gt_label']) == int(labels[i])


def test_files_follow_split_even_without_test_mode(idx_root) -> None:
    root, (train_imgs, _), (test_imgs, _) = idx_root
    test = ArrayFashionMNIST(data_root=root, split='test', download=False, pipeline=[])
    assert len(test) == len(test_imgs)  # mmpretrain's FashionMNIST would load the 12 train images
    np.testing.assert_array_equal(test.get_data_info(4)['img'], test_imgs[4])
    train = ArrayFashionMNIST(data_root=root, split='train', download=False, pipeline=[])
    assert len(train) == len(train_imgs)


def test_indices_and_registry_build(idx_root) -> None:
    root, (train_imgs, train_labels), _ = idx_root
    ds = DATASETS.build(dict(type='ArrayFashionMNIST', data_root=root, split='train',
                             download=False, indices=4, serialize_data=False,
                             pipeline=[dict(type='PackInputs')]))
    assert len(ds) == 4
    sample = ds[3]
    assert tuple(sample['inputs'].shape) == (1, 28, 28)
    np.testing.assert_array_equal(sample['inputs'][0].numpy(), train_imgs[3])
    assert int(sample['data_samples'].gt_label) == int(train_labels[3])


def test_cached_arrays_are_shared_read_only_and_refreshed_when_the_file_changes(idx_root) -> None:
    root, (train_imgs, _), _ = idx_root
    path = os.path.join(root, FILES['train'][0])
    first = read_idx_cached(path, 'images')
    assert read_idx_cached(path, 'images') is first  # decoded once
    assert not first.flags.writeable
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1  # a transform cannot corrupt the shared cache
    new = (255 - train_imgs[:3]).astype(np.uint8)
    write_idx(path, new)
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # coarse clocks
    refreshed = read_idx_cached(path, 'images')
    assert refreshed.shape == (3, 28, 28)
    np.testing.assert_array_equal(refreshed, new)


def test_bad_kind_and_inconsistent_files_are_named(idx_root) -> None:
    root, _, _ = idx_root
    with pytest.raises(ValueError, match="'pixels'"):
        read_idx_cached(os.path.join(root, FILES['train'][0]), 'pixels')
    write_idx(os.path.join(root, FILES['train'][1]), np.zeros(7, dtype=np.uint8))
    with pytest.raises(RuntimeError, match='12 images but 7 labels'):
        ArrayFashionMNIST(data_root=root, split='train', download=False, pipeline=[])


def test_missing_files_fall_back_to_mmpretrain_error(tmp_path) -> None:
    with pytest.raises(RuntimeError, match='Cannot find ArrayFashionMNIST dataset'):
        ArrayFashionMNIST(data_root=str(tmp_path), split='train', download=False, pipeline=[])
