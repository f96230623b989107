"""UnlabeledImageFolder, LabeledUnlabeledDataset and the file-list format (round trips)."""
from __future__ import annotations

import os.path as osp

import pytest
import torch
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader, TensorDataset

from mmscalekd.datasets import LabeledUnlabeledDataset, UnlabeledImageFolder
from mmscalekd.registry import DATASETS, MODELS
from tests.test_ssld._helpers import PIPELINE, labeled_folder


def test_unlabeled_folder_scans_recursively_and_ignores_non_images(folder):
    ds = UnlabeledImageFolder(data_root=str(folder), pipeline=PIPELINE)
    rel = [osp.relpath(ds.get_data_info(i)['img_path'], str(folder)) for i in range(len(ds))]
    assert rel == ['a.png', 'sub/b.JPG', 'sub/deeper/c.jpeg']
    sample = ds[0]
    assert 'gt_label' not in sample['data_samples']
    assert tuple(sample['inputs'].shape) == (3, 16, 16)
    # registered and buildable from a config
    ds2 = DATASETS.build(dict(type='UnlabeledImageFolder', data_root=str(folder),
                              pipeline=PIPELINE))
    assert len(ds2) == 3


def test_unlabeled_folder_skips_and_counts_corrupt_images(folder):
    (folder / 'zz_broken.jpg').write_bytes(b'\xff\xd8 this is not a jpeg')
    ds = UnlabeledImageFolder(data_root=str(folder), pipeline=PIPELINE, test_mode=True)
    assert len(ds) == 4
    with pytest.warns(UserWarning, match='zz_broken.jpg'):
        sample = ds[3]
    assert 'inputs' in sample  # another image was drawn instead
    assert ds.num_skipped == 1
    assert ds.skipped_paths[0].endswith('zz_broken.jpg')
    # a readable image whose pipeline fails is a bug, not a skip
    def broken_transform(results):
        raise RuntimeError('pipeline bug')

    bad = UnlabeledImageFolder(data_root=str(folder), pipeline=[
        dict(type='LoadImageFromFile'), broken_transform])
    with pytest.raises(RuntimeError, match='pipeline bug'):
        bad[0]
    assert bad.num_skipped == 0


def test_unlabeled_folder_file_list_mode(folder, tmp_path):
    lst = tmp_path / 'list.txt'
    lst.write_text('# mined images\nsub/deeper/c.jpeg\n\n a.png 0\n')
    ds = UnlabeledImageFolder(data_root=str(folder), ann_file=str(lst), pipeline=PIPELINE)
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))] == [
        'c.jpeg', 'a.png']
    assert 'gt_label' not in ds[1]['data_samples']


def test_unlabeled_folder_errors(folder, tmp_path):
    lst = tmp_path / 'list.txt'
    lst.write_text('a.png\nmissing1.png\nsub/missing2.jpg\n')
    with pytest.raises(FileNotFoundError, match=r'2 of 3 .*missing1.png, sub/missing2.jpg'):
        UnlabeledImageFolder(data_root=str(folder), ann_file=str(lst))
    empty = tmp_path / 'empty'
    (empty / 'x').mkdir(parents=True)
    (empty / 'x' / 'readme.md').write_text('hi')
    with pytest.raises(ValueError, match=r'No image found below .*empty.*\.webp'):
        UnlabeledImageFolder(data_root=str(empty))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        UnlabeledImageFolder(data_root=str(tmp_path / 'nope'))
    with pytest.raises(TypeError, match='ann_file'):
        UnlabeledImageFolder(data_root=str(folder), ann_file=None)


def test_labeled_unlabeled_mixed_batches(folder, tmp_path):
    labeled = dict(type='CustomDataset', data_root=str(labeled_folder(tmp_path)))
    unlabeled = dict(data_root=str(folder))
    ds = LabeledUnlabeledDataset(labeled, unlabeled, pipeline=PIPELINE)
    assert (len(ds), ds.num_labeled, ds.num_unlabeled) == (6, 3, 3)
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert [ds.has_label(i) for i in range(6)] == [True] * 3 + [False] * 3
    assert ds.get_data_info(2)['gt_label'] == 1 and 'gt_label' not in ds.get_data_info(3)
    # a batch whose first sample is labeled and the rest are not
    loader = DataLoader(ds, batch_size=4, shuffle=False, collate_fn=pseudo_collate)
    batch = next(iter(loader))
    flags = [s.has_label for s in batch['data_samples']]
    assert flags == [True, True, True, False]
    # mmpretrain's ClsDataPreprocessor cannot digest it ...
    plain = MODELS.build(dict(type='ClsDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]))
    with pytest.raises(AttributeError):
        plain(batch, True)
    # ... ours can; labels only on labeled samples, images normalised for all
    mixed = MODELS.build(dict(type='MixedLabelClsDataPreprocessor', mean=[1, 1, 1],
                              std=[2, 2, 2], to_rgb=True, num_classes=2, to_onehot=True))
    out = mixed(next(iter(loader)), True)
    assert tuple(out['inputs'].shape) == (4, 3, 16, 16)
    raw = batch['inputs'][3].float().flip(0)
    torch.testing.assert_close(out['inputs'][3], (raw - 1) / 2)
    samples = out['data_samples']
    assert [int(s.gt_label) for s in samples[:3]] == [0, 0, 1]
    assert samples[2].gt_score.tolist() == [0, 1]  # same dtype as mmpretrain's one-hot
    assert 'gt_label' not in samples[3] and 'gt_score' not in samples[3]
    with_aug = MODELS.build(dict(type='MixedLabelClsDataPreprocessor', num_classes=2,
                                 batch_augments=dict(augments=dict(type='Mixup', alpha=1.))))
    with pytest.raises(ValueError, match='batch_augments'):
        with_aug(next(iter(loader)), True)
    # keep_labels=False: homogeneous, label-free batches that the plain preprocessor accepts
    ds_free = LabeledUnlabeledDataset(labeled, unlabeled, pipeline=PIPELINE, keep_labels=False)
    batch = next(iter(DataLoader(ds_free, batch_size=4, collate_fn=pseudo_collate)))
    out = plain(batch, True)
    assert all('gt_label' not in s and s.has_label is False for s in out['data_samples'])


def test_labeled_repeat_oversamples_the_labeled_set(folder, tmp_path):
    labeled = dict(type='CustomDataset', data_root=str(labeled_folder(tmp_path)))
    unlabeled = dict(data_root=str(folder))
    ds = LabeledUnlabeledDataset(labeled, unlabeled, pipeline=PIPELINE, labeled_repeat=3)
    assert (len(ds), ds.num_labeled, ds.num_unlabeled) == (12, 9, 3)
    assert [ds.has_label(i) for i in range(12)] == [True] * 9 + [False] * 3
    # repeat k of labeled sample j is the same sample: same file, same label
    first = [ds.get_data_info(i) for i in range(3)]
    for i in range(3, 9):
        info = ds.get_data_info(i)
        assert info['img_path'] == first[i % 3]['img_path']
        assert info['gt_label'] == first[i % 3]['gt_label']
    assert ds.get_data_info(9)['img_path'].endswith('a.png')
    assert 'gt_label' not in ds.get_data_info(9)
    assert ds[-1]['data_samples'].has_label is False
    assert int(ds[7]['data_samples'].gt_label) == int(ds[1]['data_samples'].gt_label)
    with pytest.raises(IndexError):
        ds.get_data_info(12)
    for bad in (0, -1, 1.5, True, '2', 'Balanced', None):
        with pytest.raises(ValueError, match='labeled_repeat'):
            LabeledUnlabeledDataset(labeled, unlabeled, pipeline=PIPELINE, labeled_repeat=bad)


def test_balanced_labeled_repeat_follows_the_built_sizes(folder, tmp_path):
    labeled = dict(type='CustomDataset', data_root=str(labeled_folder(tmp_path)))
    unlabeled = dict(data_root=str(folder))  # 3 images
    # 1 labeled image (indices=1) next to 3 unlabeled: repeated 3 // 1 = 3 times, resolved lazily
    ds = LabeledUnlabeledDataset(dict(labeled, indices=1), unlabeled, pipeline=PIPELINE,
                                 labeled_repeat='balanced', lazy_init=True)
    assert ds.labeled_repeat == 3
    assert (len(ds), ds.num_labeled, ds.num_unlabeled) == (6, 3, 3)
    assert {ds.get_data_info(i)['img_path'] for i in range(3)} == {
        ds.get_data_info(0)['img_path']}
    # 3 labeled next to 3 unlabeled: 3 // 3 = 1; 2 labeled next to 3: floor 1, never 0
    assert LabeledUnlabeledDataset(labeled, unlabeled, pipeline=PIPELINE,
                                   labeled_repeat='balanced').labeled_repeat == 1
    assert LabeledUnlabeledDataset(dict(labeled, indices=2), unlabeled, pipeline=PIPELINE,
                                   labeled_repeat='balanced').labeled_repeat == 1
    with pytest.raises(ValueError, match="'balanced' needs a non-empty labeled dataset"):
        LabeledUnlabeledDataset(TensorDataset(torch.empty(0)), unlabeled,
                                labeled_repeat='balanced')




@pytest.mark.parametrize('name', ['plain.png', 'my photo.png', '#not a comment.png', '"q".png',
                                  ' lead and trail ', 'tab\there', 'new\nline', 'cr\rhere',
                                  'sep\u2028and\u0085', 'ünï 日本 😀.png', 'back\\slash',
                                  'raw\udcff\udcfe.png', 'a,b;c|d'])
def test_file_list_lines_round_trip_any_name(tmp_path, name):
    from mmscalekd.datasets.unlabeled_image_folder import format_file_list_line, read_file_list
    line = format_file_list_line(name)
    assert '\n' not in line and '\r' not in line and line.isprintable()
    line.encode('utf-8')  # valid UTF-8, whatever the name
    lst = tmp_path / 'list.txt'
    lst.write_text(f'# comment\n{line}\n\n{line} 7\n', encoding='utf-8')
    assert read_file_list(str(lst)) == [name, name]  # a label column after it is ignored
    assert (line == name) == (name in ('plain.png', 'a,b;c|d', 'back\\slash'))  # quoted if needed


def test_file_list_errors_name_the_line(tmp_path):
    from mmscalekd.datasets.unlabeled_image_folder import format_file_list_line, read_file_list
    lst = tmp_path / 'list.txt'
    lst.write_text('a.png\n"unterminated.png\n')
    with pytest.raises(ValueError, match=r'list.txt:2: .*JSON string literal'):
        read_file_list(str(lst))
    with pytest.raises(ValueError, match='non-empty str'):
        format_file_list_line('')


def test_unlabeled_folder_reads_quoted_names(tmp_path):
    from tests.test_ssld._helpers import solid
    root = tmp_path / 'pool'
    for name in ('my photo.png', '#hash.png'):
        solid(str(root / 'sub dir' / name), (1, 2, 3))
    lst = tmp_path / 'list.txt'
    lst.write_text('"sub dir/my photo.png"\n"sub dir/#hash.png" 0\n')
    ds = UnlabeledImageFolder(data_root=str(root), ann_file=str(lst), pipeline=PIPELINE)
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(2)] == [
        'my photo.png', '#hash.png']
    assert tuple(ds[1]['inputs'].shape) == (3, 16, 16)


def test_a_hash_line_that_names_a_file_is_reported(tmp_path):
    from tests.test_ssld._helpers import solid
    root = tmp_path / 'pool'
    solid(str(root / '#1.png'), (1, 2, 3))
    solid(str(root / 'a.png'), (1, 2, 3))
    lst = tmp_path / 'list.txt'
    lst.write_text('# a comment\n#1.png\na.png\n')
    with pytest.warns(UserWarning, match=r"list.txt:2: '#1.png' is read as a comment.*\"#1.png\""):
        ds = UnlabeledImageFolder(data_root=str(root), ann_file=str(lst), pipeline=PIPELINE)
    assert len(ds) == 1


def test_an_unquoted_name_with_spaces_says_how_to_quote_it(tmp_path):
    from tests.test_ssld._helpers import solid
    root = tmp_path / 'pool'
    solid(str(root / 'my photo.png'), (1, 2, 3))
    solid(str(root / 'b.png'), (1, 2, 3))
    lst = tmp_path / 'list.txt'
    lst.write_text('b.png 3\nmy photo.png\n')
    with pytest.raises(ValueError, match=r"list.txt:2: 'my photo.png' names a file.*"
                                         r"\"my photo.png\""):
        UnlabeledImageFolder(data_root=str(root), ann_file=str(lst))
