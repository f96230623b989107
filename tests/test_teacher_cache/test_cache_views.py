"""Seeded views (SeededViewDataset), per-sample Mixup / CutMix and the EpochTaggedSampler."""
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mmscalekd.datasets import EpochTaggedSampler, SeededViewDataset
from tests._builders import write_fake_fashion_mnist

PIPELINE = [dict(type='RandomResizedCrop', scale=28, crop_ratio_range=(0.5, 1.0)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
            dict(type='PackInputs')]
MIX = dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)],
           probs=[0.4, 0.4])


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('fmnist')
    write_fake_fashion_mnist(str(root), 'train', 40, seed=0)
    write_fake_fashion_mnist(str(root), 'test', 4, seed=1)  # mmpretrain checks that all exist
    return root


def _dataset_cfg(root: Path, **kwargs) -> dict:
    return dict(type='ArrayFashionMNIST', data_root=str(root), split='train', download=False,
                serialize_data=False, pipeline=PIPELINE, **kwargs)


def _views(root: Path, **kwargs) -> SeededViewDataset:
    return SeededViewDataset(_dataset_cfg(root), **kwargs)


def test_a_view_is_a_function_of_seed_epoch_and_index(data_root: Path) -> None:
    ds = _views(data_root, seed=0)
    keys = [(e, i) for e in range(2) for i in range(12)]
    first = {k: ds[k]['inputs'] for k in keys}
    # another order, after drawing from every global generator: the same views
    random.random(), np.random.rand(), torch.rand(1)
    for k in reversed(keys):
        assert torch.equal(ds[k]['inputs'], first[k]), k
    # epochs differ (random crops), and so do seeds
    assert sum(not torch.equal(first[(0, i)], first[(1, i)]) for i in range(12)) >= 10
    other = _views(data_root, seed=1)
    assert sum(not torch.equal(other[(0, i)]['inputs'], first[(0, i)]) for i in range(12)) >= 10
    meta = ds[(1, 5)]['data_samples'].metainfo
    assert meta['view_epoch'] == 1 and meta['view_index'] == 5


def test_views_leave_the_global_generators_untouched(data_root: Path) -> None:
    ds = _views(data_root, seed=0)
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    for i in range(5):
        ds[(0, i)]
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def test_fingerprint_identifies_the_view(data_root: Path) -> None:
    ds = _views(data_root, seed=0, fingerprint=True)
    a, b, c = ds[(0, 3)], ds[(0, 3)], ds[(1, 3)]
    assert a['data_samples'].view_crc == b['data_samples'].view_crc
    assert a['data_samples'].view_crc != c['data_samples'].view_crc


def test_plain_int_keys_are_refused_with_the_sampler_to_use(data_root: Path) -> None:
    with pytest.raises(TypeError, match='EpochTaggedSampler'):
        _views(data_root)[3]


def test_index_and_epoch_out_of_range(data_root: Path) -> None:
    ds = _views(data_root)
    with pytest.raises(IndexError, match='out of range'):
        ds[(0, 40)]
    with pytest.raises(IndexError, match='epoch'):
        ds[(-1, 0)]


def test_mixup_and_cutmix_recreate_partner_ratio_and_scores(data_root: Path) -> None:
    ds = _views(data_root, seed=0, mix=MIX)
    plain = _views(data_root, seed=0)
    kinds = set()
    for i in range(40):
        out = ds[(0, i)]
        x, sample = out['inputs'], out['data_samples']
        assert x.dtype == torch.float32
        assert float(sample.gt_score.sum()) == pytest.approx(1.0)
        own = plain.view(i, 0)
        y = int(own['data_samples'].gt_label)
        if 'mix' not in sample:
            assert torch.equal(x, own['inputs'].float())
            assert float(sample.gt_score[y]) == 1.0
            kinds.add(None)
            continue
        kinds.add(sample.mix)
        partner = plain.view(sample.mix_partner, 0)  # the partner's own view of the epoch
        yp = int(partner['data_samples'].gt_label)
        lam = sample.mix_lam
        if sample.mix == 'Mixup':
            torch.testing.assert_close(x, lam * own['inputs'].float()
                                       + (1 - lam) * partner['inputs'].float())
        else:  # CutMix: a box of the partner pasted, lam = 1 - box area (correct_lam)
            changed = (x != own['inputs'].float()).flatten(0, -3).any(0)
            assert torch.equal(x[..., changed], partner['inputs'].float()[..., changed])
            rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
            if len(rows):
                box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
                assert int(box) <= round((1 - lam) * 28 * 28)
        expected = torch.zeros(10)
        expected[y] += lam
        expected[yp] += 1 - lam
        torch.testing.assert_close(sample.gt_score, expected)
        assert torch.equal(ds[(0, i)]['inputs'], x)  # and again
    assert kinds == {None, 'Mixup', 'CutMix'}


def test_mixing_with_an_unlabeled_partner_drops_the_label(data_root: Path) -> None:
    cfg = dict(type='LabeledUnlabeledDataset', labeled=_dataset_cfg(data_root, indices=2),
               unlabeled=_dataset_cfg(data_root), keep_labels=True)
    ds = SeededViewDataset(cfg, seed=0, mix=dict(augments=[dict(type='Mixup', alpha=1.0)]))
    seen = 0
    for i in range(2):  # the labeled samples; their partners are almost always unlabeled
        sample = ds[(0, i)]['data_samples']
        if sample.mix_partner >= 2:
            assert 'gt_label' not in sample and 'gt_score' not in sample
            assert sample.has_label is False
            seen += 1
    assert seen >= 1


@pytest.mark.parametrize('mix, match', [
    (dict(augments=[dict(type='ResizeMix', alpha=1.0)]), 'Mixup or CutMix'),
    (dict(augments=[dict(type='Mixup', alpha=0.0)]), 'alpha must be a positive'),
    (dict(augments=[dict(type='Mixup', alpha=1.0)], probs=[1.2]), 'mix.probs'),
    (dict(augments=[]), 'non-empty list'),
    (dict(augment=[dict(type='Mixup', alpha=1.0)]), 'augments'),
])
def test_bad_mix_configs_are_refused(data_root: Path, mix: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        _views(data_root, mix=mix)


@pytest.mark.parametrize('kwargs, match', [
    (dict(seed=-1), 'seed'), (dict(seed=1.5), 'seed'), (dict(fingerprint=1), 'fingerprint')])
def test_bad_arguments_are_refused(data_root: Path, kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        _views(data_root, **kwargs)


def test_a_built_dataset_is_refused(data_root: Path) -> None:
    with pytest.raises(TypeError, match='config dict'):
        SeededViewDataset(torch.utils.data.TensorDataset(torch.zeros(3)))


def test_epoch_tagged_sampler_tags_default_sampler_order_with_the_epoch() -> None:
    from mmengine.dataset import DefaultSampler
    data = list(range(10))
    tagged = EpochTaggedSampler(data, shuffle=True, seed=3)
    plain = DefaultSampler(data, shuffle=True, seed=3)
    for epoch in (0, 4):
        tagged.set_epoch(epoch)
        plain.set_epoch(epoch)
        assert list(tagged) == [(epoch, i) for i in plain]
    tagged.start_at(7)  # resume mid-epoch: the rest of epoch 4
    assert list(tagged) == [(4, i) for i in list(plain)[7:]]
    assert len(tagged) == 10


def test_views_are_the_same_in_dataloader_workers(data_root: Path) -> None:
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    ds = _views(data_root, seed=0, mix=MIX)
    keys = [(1, i) for i in range(10)]
    loader = DataLoader(ds, batch_size=5, sampler=keys, num_workers=2, collate_fn=pseudo_collate)
    loaded = [x for batch in loader for x in batch['inputs']]
    for key, x in zip(keys, loaded):
        assert torch.equal(x, ds[key]['inputs']), key
