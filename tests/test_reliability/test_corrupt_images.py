"""Corrupt images in a labelled dataset are skipped with a warning and counted."""
import warnings
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.optim import OptimWrapper
from torch.utils.data import DataLoader

from mmscalekd.datasets.transforms import LoadImageFromFileOrSkip, truncation_problem
from mmscalekd.registry import DATASETS, MODELS, TRANSFORMS

PIPELINE = [dict(type='LoadImageFromFileOrSkip'), dict(type='PackInputs')]


def _encode(ext: str, seed: int) -> bytes:
    import cv2
    img = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return cv2.imencode(ext, img)[1].tobytes()


@pytest.fixture
def folder(tmp_path: Path) -> Dict[str, Path]:
    """cat/ and dog/ with 4 good images each, plus a truncated JPEG and a zero-byte PNG."""
    for c, cls in enumerate(('cat', 'dog')):
        (tmp_path / cls).mkdir()
        for i in range(4):
            ext = '.jpg' if i % 2 else '.png'
            (tmp_path / cls / f'{i}{ext}').write_bytes(_encode(ext, 10 * c + i))
    jpeg = _encode('.jpg', 99)
    truncated = tmp_path / 'cat' / 'truncated.jpg'
    truncated.write_bytes(jpeg[:len(jpeg) // 2])
    empty = tmp_path / 'dog' / 'empty.png'
    empty.write_bytes(b'')
    return dict(root=tmp_path, truncated=truncated, empty=empty)


def _dataset(root: Path, pipeline=None, **kwargs):
    return DATASETS.build(dict(type='CustomDataset', data_root=str(root),
                               pipeline=pipeline or PIPELINE, **kwargs))


def test_corrupt_images_skipped_for_a_full_training_epoch(folder) -> None:
    torch.manual_seed(0)
    np.random.seed(0)  # BaseDataset draws the replacement index with NumPy
    dataset = _dataset(folder['root'])
    assert len(dataset) == 10
    loader = DataLoader(dataset, batch_size=4, sampler=DefaultSampler(dataset, seed=0),
                        collate_fn=pseudo_collate, num_workers=0)
    model = MODELS.build(dict(
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=2, mean=[127.5] * 3,
                               std=[64.0] * 3),
        backbone=dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=64)))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = model.head.fc.weight.detach().clone()
    bad = {str(folder['truncated']), str(folder['empty'])}
    seen, batches = [], 0
    with pytest.warns(UserWarning, match='Skipping unreadable image') as record:
        for data in loader:
            losses = model.train_step(data, optim)
            assert torch.isfinite(losses['loss'])
            seen += [s.img_path for s in data['data_samples']]
            batches += 1
    assert batches == 3 and len(seen) == 10  # the epoch ran to its end at full size
    assert not bad & set(seen)  # replacements were drawn for the two bad files
    load = dataset.pipeline.transforms[0]
    assert load.num_skipped == 2 and set(load.skipped_paths) == bad
    assert load.num_skip_events >= 2
    messages = [str(w.message) for w in record if 'Skipping unreadable' in str(w.message)]
    assert len(messages) == 2  # one warning per bad file, naming it
    assert any('truncated.jpg' in m for m in messages) and any('empty.png' in m
                                                                for m in messages)
    assert not torch.equal(before, model.head.fc.weight)  # it really trained


def test_plain_loader_would_crash_on_the_same_folder(folder) -> None:
    dataset = _dataset(folder['root'], pipeline=[dict(type='LoadImageFromFile'),
                                                 dict(type='PackInputs')])
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'] == str(folder['empty']))
    with pytest.raises(Exception):
        dataset[index]


def test_test_mode_refuses_a_skipped_sample(folder) -> None:
    """Evaluation must see every image: MMEngine raises on a None sample in test_mode."""
    dataset = _dataset(folder['root'], test_mode=True)
    index = next(i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'] == str(folder['truncated']))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(Exception, match='should not get `None`'):
            dataset[index]


def test_registered_and_loads_good_images_like_load_image_from_file(folder) -> None:
    """Registry case for the transform: built by name, same output as LoadImageFromFile."""
    ours = TRANSFORMS.build(dict(type='LoadImageFromFileOrSkip', to_float32=True))
    assert type(ours) is LoadImageFromFileOrSkip and 'check_truncation=True' in repr(ours)
    plain = TRANSFORMS.build(dict(type='LoadImageFromFile', to_float32=True))
    for name in ('cat/0.png', 'cat/1.jpg'):
        path = str(folder['root'] / name)
        a, b = ours(dict(img_path=path)), plain(dict(img_path=path))
        np.testing.assert_array_equal(a['img'], b['img'])
        assert a['img'].dtype == np.float32 and a['img_shape'] == a['ori_shape'] == (16, 16)
    assert ours.num_skipped == 0


def test_missing_file_and_bad_option_still_raise(folder) -> None:
    with pytest.raises(FileNotFoundError):
        TRANSFORMS.build(dict(type='LoadImageFromFileOrSkip'))(
            dict(img_path=str(folder['root'] / 'cat' / 'gone.jpg')))
    with pytest.raises(TypeError, match="check_truncation must be a bool, got 'yes'"):
        TRANSFORMS.build(dict(type='LoadImageFromFileOrSkip', check_truncation='yes'))


def test_truncation_problem_on_hand_made_bytes() -> None:
    jpeg, png = _encode('.jpg', 0), _encode('.png', 0)
    assert truncation_problem(jpeg) is None and truncation_problem(png) is None
    assert truncation_problem(b'') == 'the file is empty'
    assert 'truncated JPEG' in truncation_problem(jpeg[:-2])  # only the EOI marker missing
    # an EOI before the last scan (an EXIF thumbnail's) does not count
    assert 'truncated JPEG' in truncation_problem(b'\xff\xd8\xff\xd9\xff\xda\x00\x01')
    assert 'truncated PNG' in truncation_problem(png[:-12])  # IEND chunk cut off
    assert truncation_problem(b'GIF89a...') is None  # other formats: the decoder decides
