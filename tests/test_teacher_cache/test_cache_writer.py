"""The cache writer, the manifest and every start-up check of a cache against a run."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmscalekd.datasets import SeededViewDataset, TeacherCacheDataset
from mmscalekd.registry import DATASETS, MODELS
from mmscalekd.teacher_cache import (
    TeacherCacheError,
    file_sha256,
    load_manifest,
    state_dict_sha256,
    teacher_identity,
)
from mmscalekd.teacher_cache.manifest import preprocessor_identity
from mmscalekd.teacher_cache.records import encode_topk
from mmscalekd.teacher_cache.writer import (
    build_teacher,
    cache_sources,
    derive_cache,
    write_teacher_cache,
)
from tests.test_teacher_cache.cache_helpers import NUM_TRAIN, make_data, tiny_config

WRITE = dict(epochs=2, topk=None, dtype='float32', shard_size=12, batch_size=8, num_workers=0)


@pytest.fixture(scope='module')
def written(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('cache')
    data = make_data(root)
    cache = root / 'cache'
    cfg = tiny_config(data, cache)
    result = write_teacher_cache(cfg, **WRITE)
    return dict(root=root, data=data, cache=cache, cfg=cfg, result=result)


def _dataset(cfg) -> TeacherCacheDataset:
    return DATASETS.build(cfg.train_dataloader.dataset)


def test_manifest_says_what_the_cache_was_written_from(written: dict) -> None:
    m = load_manifest(str(written['cache']))
    assert (m.dataset_length, m.epochs, m.num_classes, m.topk, m.dtype) == (
        NUM_TRAIN, 2, 10, 10, 'float32')
    assert m.record_bytes == 6 * 10 + 8
    assert len(m.shards) == 2 * 3  # 32 samples in shards of 12, two epochs
    assert [(s['start'], s['stop']) for s in m.shards[:3]] == [(0, 12), (12, 24), (24, 32)]
    assert m.teacher['checkpoint_sha256'] == file_sha256(str(written['data']['teacher']))
    src = cache_sources(written['cfg'])
    pre = MODELS.build(src.data_preprocessor)
    assert m.teacher['weights_sha256'] == state_dict_sha256(build_teacher(src.teacher, pre))
    assert m.created_with['torch'] == torch.__version__.split('+')[0] or m.created_with['torch']
    assert written['result'].samples_written == 2 * NUM_TRAIN
    assert not (written['cache'] / 'writing.json').exists()


def test_records_are_the_teacher_outputs_on_the_recreated_views(written: dict) -> None:
    src = cache_sources(written['cfg'])
    views = SeededViewDataset(src.dataset, seed=src.seed, mix=src.mix, fingerprint=True)
    pre = MODELS.build(src.data_preprocessor)
    teacher = build_teacher(src.teacher, pre)
    m = load_manifest(str(written['cache']))
    for epoch in range(2):
        keys = [(epoch, i) for i in (0, 5, 13, 31)]  # another batch than the writer's
        batch = pre(pseudo_collate([views[k] for k in keys]), training=False)
        with torch.no_grad():
            logits = teacher.forward_targets(batch['inputs']).logits
        expected = encode_topk(logits, 10, 'float32')
        for row, (_, i) in enumerate(keys):
            part, offset = divmod(i, m.shard_size)
            rec = m.open_part(epoch, part)[offset]
            assert np.array_equal(rec['index'], expected['index'][row])
            np.testing.assert_allclose(rec['logit'], expected['logit'][row], rtol=0, atol=1e-6)
            assert int(rec['crc']) == batch['data_samples'][row].view_crc


def test_replay_dataset_attaches_the_cached_logits(written: dict) -> None:
    ds = _dataset(written['cfg'])
    out = ds[(1, 7)]
    logits = out['data_samples'].teacher_logits
    assert logits.shape == (10, ) and logits.dtype == torch.float32
    assert float(logits.max()) == 0.0  # max-shifted
    assert out['data_samples'].cache_epoch == 1


def test_an_epoch_beyond_the_cache_is_refused_or_cycled(written: dict) -> None:
    ds = _dataset(written['cfg'])
    with pytest.raises(TeacherCacheError, match=r'holds 2 epoch\(s\).*needs 3.*--epochs 3'):
        ds[(2, 0)]
    cyc = _dataset(tiny_config(written['data'], written['cache'],
                               {'train_dataloader.dataset.cycle': True}))
    a, b = cyc[(2, 4)], ds[(0, 4)]
    assert torch.equal(a['inputs'], b['inputs'])
    assert torch.equal(a['data_samples'].teacher_logits, b['data_samples'].teacher_logits)


def test_a_changed_view_config_is_refused_naming_the_key(written: dict) -> None:
    cfg = tiny_config(written['data'], written['cache'], {'train_dataloader.dataset.seed': 1})
    with pytest.raises(TeacherCacheError, match=r'view seed.*seed: 0 vs 1'):
        _dataset(cfg)
    cfg = tiny_config(written['data'], written['cache'],
                      {'train_dataloader.dataset.mix.probs': [0.5, 0.5]})
    with pytest.raises(TeacherCacheError, match=r'mix\.probs\[0\]: 0\.4 vs 0\.5'):
        _dataset(cfg)


def test_a_changed_dataset_length_is_refused(written: dict, tmp_path: Path) -> None:
    from tests._builders import write_fake_fashion_mnist
    data = dict(written['data'])
    data['data'] = tmp_path / 'fmnist'
    shutil.copytree(written['data']['data'], data['data'])
    write_fake_fashion_mnist(str(data['data']), 'train', NUM_TRAIN - 1, seed=0)
    cfg = tiny_config(data, written['cache'],
                      {'train_dataloader.dataset.dataset.data_root': str(written['data']['data'])})
    cfg.train_dataloader.dataset.dataset.data_root = str(written['data']['data'])
    # same config text, other files: point the *same* data_root at the shorter copy
    os.rename(written['data']['data'], tmp_path / 'orig')
    os.symlink(data['data'], written['data']['data'])
    try:
        with pytest.raises(TeacherCacheError, match=f'has {NUM_TRAIN - 1} samples.*{NUM_TRAIN}'):
            _dataset(cfg)
    finally:
        os.remove(written['data']['data'])
        os.rename(tmp_path / 'orig', written['data']['data'])


def test_a_view_that_differs_from_the_cached_one_is_refused(written: dict,
                                                            tmp_path: Path) -> None:
    cache = tmp_path / 'cache'
    shutil.copytree(written['cache'], cache)
    path = cache / 'epoch_0000' / 'part_00000.npy'
    records = np.load(path)
    records['crc'][3] ^= 1
    np.save(path, records)
    ds = _dataset(tiny_config(written['data'], cache))
    ds[(0, 2)]
    with pytest.raises(TeacherCacheError, match='view of sample 3 in epoch 0 is not the one'):
        ds[(0, 3)]
    ds.verify_views = False
    ds[(0, 3)]


def test_a_missing_shard_is_refused_at_start(written: dict, tmp_path: Path) -> None:
    cache = tmp_path / 'cache'
    shutil.copytree(written['cache'], cache)
    (cache / 'epoch_0001' / 'part_00002.npy').unlink()
    with pytest.raises(TeacherCacheError, match=r"missing.*epoch_0001/part_00002\.npy"):
        _dataset(tiny_config(written['data'], cache))


def test_no_cache_at_all(written: dict, tmp_path: Path) -> None:
    with pytest.raises(TeacherCacheError, match='no manifest.json: there is no cache there'):
        _dataset(tiny_config(written['data'], tmp_path / 'nothing'))


def test_teacher_and_preprocessor_checks(written: dict, tmp_path: Path) -> None:
    m = load_manifest(str(written['cache']))
    src = cache_sources(written['cfg'])
    m.check_teacher(teacher_identity(src.teacher))
    m.check_preprocessor(preprocessor_identity(src.data_preprocessor))
    other = dict(src.teacher, tpp_blocks=2)
    with pytest.raises(TeacherCacheError, match=r'teacher config.*tpp_blocks: 1 vs 2'):
        m.check_teacher(teacher_identity(other))
    # other weights at the same path
    moved = tmp_path / 'teacher.pth'
    state = torch.load(written['data']['teacher'])
    state['state_dict'] = {k: v + 1 for k, v in state['state_dict'].items()}
    torch.save(state, moved)
    with pytest.raises(TeacherCacheError, match='SHA-256.*other weights'):
        m.check_teacher(teacher_identity(dict(src.teacher, checkpoint=str(moved))))
    # the same file elsewhere is the same teacher
    shutil.copy(written['data']['teacher'], moved)
    m.check_teacher(teacher_identity(dict(src.teacher, checkpoint=str(moved))))
    # a file that is gone cannot be compared under another path
    with pytest.raises(TeacherCacheError, match='cannot be compared'):
        m.check_teacher(teacher_identity(dict(src.teacher, checkpoint=str(tmp_path / 'x.pth'))))
    pre = dict(src.data_preprocessor, std=[1.0])
    with pytest.raises(TeacherCacheError, match=r'data preprocessor.*std\[0\]: 90\.02 vs 1\.0'):
        m.check_preprocessor(preprocessor_identity(pre))
    with pytest.raises(TeacherCacheError, match='the student head has 5 classes'):
        m.check_num_classes(5)


def test_an_interrupted_write_is_finished_keeping_complete_shards(written: dict,
                                                                  tmp_path: Path) -> None:
    cache = tmp_path / 'cache'
    shutil.copytree(written['cache'], cache)
    # as if the writer had died before the end: its plan there, no manifest
    (cache / 'manifest.json').rename(cache / 'writing.json')
    (cache / 'epoch_0001' / 'part_00001.npy.json').unlink()  # this shard was not finished
    kept = cache / 'epoch_0000' / 'part_00000.npy'
    mtime = kept.stat().st_mtime_ns
    cfg = tiny_config(written['data'], cache)
    with pytest.raises(TeacherCacheError, match='its writer stopped before the end'):
        _dataset(cfg)
    result = write_teacher_cache(cfg, **WRITE)
    assert (result.shards_written, result.shards_skipped) == (1, 5)
    assert kept.stat().st_mtime_ns == mtime
    a = np.load(cache / 'epoch_0001' / 'part_00001.npy')
    b = np.load(written['cache'] / 'epoch_0001' / 'part_00001.npy')
    assert np.array_equal(a['index'], b['index']) and np.array_equal(a['crc'], b['crc'])
    np.testing.assert_allclose(a['logit'], b['logit'], atol=1e-6, rtol=0)
    # extending to more epochs keeps the written ones
    result = write_teacher_cache(cfg, **dict(WRITE, epochs=3))
    assert (result.shards_written, result.shards_skipped) == (3, 6)
    assert load_manifest(str(cache)).epochs == 3 and kept.stat().st_mtime_ns == mtime
    # and nothing to do when it already holds them
    assert write_teacher_cache(cfg, **WRITE).shards_written == 0


def test_a_folder_with_another_cache_is_never_overwritten(written: dict) -> None:
    before = (written['cache'] / 'manifest.json').read_text()
    with pytest.raises(TeacherCacheError, match=r'another config.*topk: 10 vs 3.*kept'):
        write_teacher_cache(written['cfg'], **dict(WRITE, topk=3))
    with pytest.raises(TeacherCacheError, match='config_sha256'):
        write_teacher_cache(tiny_config(written['data'], written['cache'],
                                        {'train_dataloader.dataset.seed': 5}), **WRITE)
    assert (written['cache'] / 'manifest.json').read_text() == before


def test_derived_cache_equals_a_written_one(written: dict, tmp_path: Path) -> None:
    derived = derive_cache(written['cfg'], str(written['cache']), out_dir=str(tmp_path / 'd'),
                           topk=3, dtype='float16')
    direct = write_teacher_cache(written['cfg'], out_dir=str(tmp_path / 'w'),
                                 **dict(WRITE, topk=3, dtype='float16')).manifest
    assert derived.config_sha256 == direct.config_sha256 and derived.record_bytes == 4 * 3 + 8
    for side in direct.shards:
        a = derived.open_part(side['epoch'], side['part'])
        b = direct.open_part(side['epoch'], side['part'])
        assert np.array_equal(a['index'], b['index']) and np.array_equal(a['crc'], b['crc'])
        np.testing.assert_allclose(a['logit'].astype(np.float32),
                                   b['logit'].astype(np.float32), atol=1e-3)
    with pytest.raises(TeacherCacheError, match='needs the teacher'):
        derive_cache(written['cfg'], str(tmp_path / 'd'), out_dir=str(tmp_path / 'e'), topk=5)
    with pytest.raises(TeacherCacheError, match='float32 cache cannot be derived'):
        derive_cache(written['cfg'], str(tmp_path / 'd'), out_dir=str(tmp_path / 'e'), topk=2,
                     dtype='float32')


@pytest.mark.parametrize('extra, match', [
    ({'model.distill_stages': [dict(name='s3')]}, 'logits only'),
    ({'model.data_preprocessor.batch_augments': dict(augments=dict(type='Mixup', alpha=1.0))},
     'batch_augments.*mix=dict'),
    ({'model.teacher_train_mode': True}, 'stochastic'),
    ({'model.logit_loss': None}, 'no logit_loss'),
    ({'train_dataloader.dataset.type': 'ArrayFashionMNIST'}, 'EpochTaggedSampler'),
])
def test_configs_that_cannot_be_cached_are_refused(written: dict, extra: dict,
                                                   match: str) -> None:
    with pytest.raises(TeacherCacheError, match=match):
        cache_sources(tiny_config(written['data'], written['cache'], extra))


def test_manifest_json_is_readable(written: dict) -> None:
    obj = json.loads((written['cache'] / 'manifest.json').read_text())
    assert obj['format'] == 'mmscalekd-teacher-cache' and obj['version'] == 1
    assert obj['views']['config']['seed'] == 0
    assert obj['views']['config']['mix']['augments'][0]['type'] == 'Mixup'


def test_replay_keeps_a_bounded_number_of_shards_open(written: dict) -> None:
    ds = _dataset(written['cfg'])
    ds.max_open_shards = 2
    for epoch in range(2):
        for i in (0, 13, 25):  # three shards per epoch
            ds[(epoch, i)]
    assert list(ds._parts) == [(1, 1), (1, 2)]
    assert torch.equal(ds[(0, 0)]['data_samples'].teacher_logits,
                       _dataset(written['cfg'])[(0, 0)]['data_samples'].teacher_logits)


def test_compare_caches_measures_the_target_deviation(written: dict, tmp_path: Path) -> None:
    from mmscalekd.teacher_cache.compare import compare_caches
    full = load_manifest(str(written['cache']))
    same = compare_caches(full, full)
    assert same['samples'] == 2 * NUM_TRAIN and same['mean_kl'] == 0.0
    assert same['mean_rest_mass'] == pytest.approx(0.0, abs=1e-6) and same['top1_agree'] == 1.0
    top1 = derive_cache(written['cfg'], str(written['cache']), out_dir=str(tmp_path / 't1'),
                        topk=1)
    dev = compare_caches(full, top1)
    assert dev['mean_kl'] > 0 and 0 < dev['mean_rest_mass'] < 0.9 and dev['top1_agree'] == 1.0
    # the rest mass of a top-1 cache is 1 - p_max of the reference
    ds_ref = _dataset(written['cfg'])
    p = torch.stack([ds_ref[(0, i)]['data_samples'].teacher_logits.softmax(0)
                     for i in range(NUM_TRAIN)])
    assert compare_caches(full, top1, max_samples=8)['samples'] == 2 * 8  # 8 per epoch
    assert float((1 - p.max(1).values).mean()) == pytest.approx(
        compare_caches(full, _epoch0(top1))['mean_rest_mass'], rel=1e-4)


def _epoch0(m):
    import copy
    m = copy.copy(m)
    m.shards = [s for s in m.shards if s['epoch'] == 0]
    if hasattr(m, '_by_key'):
        del m._by_key
    return m
