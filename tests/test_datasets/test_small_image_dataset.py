"""Small image sets (IDX files or class folders), SmallImageDataset, and one data_root."""
import gzip
import os
import shutil

import numpy as np
import pytest

from mmscalekd.datasets import SmallImageDataset, follow_data_root, load_image_set
from mmscalekd.registry import DATASETS
from tests._builders import FMNIST_FILES, write_fake_fashion_mnist, write_image_folder


@pytest.fixture()
def idx_root(tmp_path):
    root = str(tmp_path / 'idx')
    train = write_fake_fashion_mnist(root, 'train', 60, seed=0)
    test = write_fake_fashion_mnist(root, 'test', 20, seed=1)
    return root, train, test


def test_idx_set_reads_both_splits_labels_and_sizes(idx_root) -> None:
    root, (train_imgs, train_labels), (test_imgs, test_labels) = idx_root
    s = load_image_set(root)
    assert s.format == 'idx' and s.image_shape == (1, 28, 28) and s.converted == ''
    np.testing.assert_array_equal(s.train.images, train_imgs)
    np.testing.assert_array_equal(s.test.labels, test_labels)
    assert s.classes == tuple(str(k) for k in range(s.num_classes))
    assert not s.train.images.flags.writeable  # shared cache: read-only
    assert load_image_set(root) is s  # cached while the files are unchanged
    assert [f for f, _ in s.files] == list(FMNIST_FILES['train'] + FMNIST_FILES['test'])


def test_fingerprint_follows_content_not_file_format(idx_root, tmp_path) -> None:
    root, (train_imgs, train_labels), (test_imgs, test_labels) = idx_root
    gz = str(tmp_path / 'gz')
    os.makedirs(gz)
    for name in FMNIST_FILES['train'] + FMNIST_FILES['test']:
        with open(os.path.join(root, name), 'rb') as src, \
                gzip.open(os.path.join(gz, name + '.gz'), 'wb') as dst:
            shutil.copyfileobj(src, dst)
    classes = [str(k) for k in range(10)]
    folder = str(tmp_path / 'png')
    write_image_folder(folder, train_imgs, train_labels, classes, split='train')
    write_image_folder(folder, test_imgs, test_labels, classes, split='test')
    a, b, c = load_image_set(root), load_image_set(gz), load_image_set(folder, channels=1)
    assert b.format == 'idx' and c.format == 'folder'
    # the folder lists images class by class; same pixels and labels as a set
    order = np.argsort(train_labels, kind='stable')
    np.testing.assert_array_equal(c.train.images, train_imgs[order])
    assert a.fingerprint()['sha256'] == b.fingerprint()['sha256']
    assert c.fingerprint()['sha256'] != a.fingerprint()['sha256']  # other order: other data
    changed = str(tmp_path / 'changed')
    shutil.copytree(root, changed)
    imgs = train_imgs.copy()
    imgs[0, 0, 0] ^= 1  # one pixel
    from tests._builders import write_idx
    write_idx(os.path.join(changed, FMNIST_FILES['train'][0]), imgs)
    assert load_image_set(changed).fingerprint()['sha256'] != a.fingerprint()['sha256']
    fp = a.fingerprint()
    assert (fp['num_train'], fp['num_classes'], fp['image_shape']) == (60, 10, [1, 28, 28])


def test_pixel_stats_match_numpy(idx_root) -> None:
    root, (train_imgs, _), _ = idx_root
    mean, std = load_image_set(root).pixel_stats()
    assert mean == [round(float(train_imgs.mean()), 2)]
    assert std == [round(float(train_imgs.std()), 2)]


def test_folder_without_splits_holds_out_a_stratified_fifth(tmp_path) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(50, 12, 10, 3), dtype=np.uint8)
    labels = np.repeat([0, 1], 25)
    write_image_folder(str(tmp_path), imgs, labels, ['cat', 'dog'])
    with open(tmp_path / 'dog' / 'broken.png', 'wb') as f:
        f.write(b'not a png')
    with pytest.warns(UserWarning, match='skipped 1 unreadable image'):
        s = load_image_set(str(tmp_path), img_size=8, channels=1)
    assert s.classes == ('cat', 'dog') and s.skipped == ('dog/broken.png', )
    assert (len(s.train), len(s.test)) == (40, 10)
    assert np.bincount(s.test.labels).tolist() == [5, 5]
    assert s.image_shape == (1, 8, 8)
    assert 'RGB -> grayscale' in s.converted and '12x10 -> 8x8' in s.converted
    with pytest.warns(UserWarning, match="skipped 1"):  # another conversion: read again
        rgb = load_image_set(str(tmp_path), img_size=8, channels=3)
    assert rgb.image_shape == (3, 8, 8) and rgb.train.images.shape[-1] == 3


def test_folder_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match='no IDX files .* and no class sub-folders'):
        load_image_set(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='is not a folder'):
        load_image_set(str(tmp_path / 'missing'))
    os.makedirs(tmp_path / 'train' / 'a')
    with pytest.raises(FileNotFoundError, match='neither test/ nor val/'):
        load_image_set(str(tmp_path))
    with pytest.raises(ValueError, match='channels must be 1'):
        load_image_set(str(tmp_path), channels=2)


def test_classes_txt_names_idx_classes(idx_root) -> None:
    root, _, _ = idx_root
    with open(os.path.join(root, 'classes.txt'), 'w') as f:
        f.write('\n'.join(f'c{k}' for k in range(10)) + '\n')
    assert load_image_set(root).classes == tuple(f'c{k}' for k in range(10))


def test_dataset_subsets_are_stratified_nested_and_complementary(idx_root) -> None:
    root, (train_imgs, train_labels), _ = idx_root
    pool = SmallImageDataset(data_root=root, subset=(40, ), pipeline=[])
    labeled = SmallImageDataset(data_root=root, subset=(40, 10), pipeline=[])
    held = SmallImageDataset(data_root=root, subset=(40, 10), complement=True, pipeline=[])
    assert (len(pool), len(labeled), len(held)) == (40, 10, 30)
    assert set(labeled.source_indices) <= set(pool.source_indices)
    assert set(held.source_indices) == set(pool.source_indices) - set(labeled.source_indices)
    info = labeled.get_data_info(3)
    i = labeled.source_indices[3]
    np.testing.assert_array_equal(info['img'], train_imgs[i])
    assert int(info['gt_label']) == int(train_labels[i]) and info['gt_label'].dtype == np.int64
    assert labeled.metainfo['classes'] == tuple(str(k) for k in range(10))


def test_dataset_builds_from_config_and_packs(idx_root) -> None:
    root, (_, _), (test_imgs, _) = idx_root
    ds = DATASETS.build(dict(type='SmallImageDataset', data_root=root, split='test',
                             test_mode=True, serialize_data=False,
                             pipeline=[dict(type='PackInputs')]))
    sample = ds[2]
    assert tuple(sample['inputs'].shape) == (1, 28, 28)
    np.testing.assert_array_equal(sample['inputs'][0].numpy(), test_imgs[2])


def test_dataset_errors(idx_root) -> None:
    root, _, _ = idx_root
    with pytest.raises(ValueError, match="top-level `data_root`"):
        SmallImageDataset(pipeline=[])
    with pytest.raises(ValueError, match=r"split must be 'train' or 'test', got 'val'"):
        SmallImageDataset(data_root=root, split='val')
    with pytest.raises(ValueError, match=r"60 images\).*subset size #0 must be an int in "
                                         r"\[1, 60\]"):
        SmallImageDataset(data_root=root, subset=(100, ))
    with pytest.raises(ValueError, match='classes names 2 classes'):
        SmallImageDataset(data_root=root, classes=['a', 'b'])


def test_follow_data_root_fills_every_dataset_without_its_own() -> None:
    cfg = dict(
        data_root='/new',
        train_dataloader=dict(dataset=dict(
            type='LabeledUnlabeledDataset',
            labeled=dict(type='SmallImageDataset', split='train', pipeline=[
                dict(type='LoadImageFromFile')]),
            unlabeled=dict(type='SmallImageDataset', data_root='/kept'))),
        val_dataloader=dict(dataset=dict(type='SmallImageDataset', split='test')),
        test_dataloader=None)
    changed = follow_data_root(cfg)
    assert changed == ['train_dataloader.dataset.labeled', 'val_dataloader.dataset']
    train = cfg['train_dataloader']['dataset']
    assert train['labeled']['data_root'] == '/new'
    assert train['unlabeled']['data_root'] == '/kept'  # explicit values win
    assert 'data_root' not in train  # LabeledUnlabeledDataset takes none
    assert 'data_root' not in train['labeled']['pipeline'][0]  # transforms are not datasets
    assert follow_data_root(dict(train_dataloader=dict(dataset=dict(type='X')))) == []
