"""Tests of the SSLD parts: unlabeled datasets, mixed batches, the mining tool, configs."""
from __future__ import annotations

import csv
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import mmscalekd  # noqa: F401  (compat fixes first)
from mmscalekd.utils import register_all_modules

register_all_modules()

from mmengine.dataset import pseudo_collate  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from mmscalekd.datasets import LabeledUnlabeledDataset, UnlabeledImageFolder  # noqa: E402
from mmscalekd.registry import DATASETS, MODELS  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(16, 16)),
            dict(type='PackInputs')]


def _img(path: str, color: tuple, size: int = 20, fmt: str = None) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.new('RGB', (size, size), color).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / 'pool'
    _img(str(root / 'a.png'), (255, 0, 0))
    _img(str(root / 'sub' / 'b.JPG'), (0, 255, 0), fmt='JPEG')
    _img(str(root / 'sub' / 'deeper' / 'c.jpeg'), (0, 0, 255), fmt='JPEG')
    (root / 'notes.txt').write_text('not an image')
    (root / 'sub' / 'labels.csv').write_text('x,y')
    return root


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


def _labeled_folder(tmp_path):
    root = tmp_path / 'labeled'
    _img(str(root / 'cat' / 'c0.png'), (10, 10, 10))
    _img(str(root / 'cat' / 'c1.png'), (20, 20, 20))
    _img(str(root / 'dog' / 'd0.png'), (30, 30, 30))
    return root


def test_labeled_unlabeled_mixed_batches(folder, tmp_path):
    labeled = dict(type='CustomDataset', data_root=str(_labeled_folder(tmp_path)))
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
    labeled = dict(type='CustomDataset', data_root=str(_labeled_folder(tmp_path)))
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
    labeled = dict(type='CustomDataset', data_root=str(_labeled_folder(tmp_path)))
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


# ----------------------------------------------------------------------------- mining tool
sys.path.insert(0, osp.join(REPO, 'tools', 'ssld'))
import mine_unlabeled as mu  # noqa: E402


def _textured(path: str, tint: tuple, seed: int, size: int = 48, fmt: str = 'PNG') -> None:
    """A tint plus a zero-mean random texture, so that pHashes differ between images."""
    rng = np.random.default_rng(seed)
    tex = rng.uniform(-30, 30, size=(8, 8))
    tex = np.kron(tex, np.ones((size // 8, size // 8)))[..., None]
    arr = np.clip(np.array(tint, dtype=np.float64)[None, None] + tex, 0, 255).astype(np.uint8)
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


class ColourScorer:
    """Logits are the mean R, G, B (on a 0-255 scale) / 20: class c = colour channel c."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, img: torch.Tensor):
        self.seen += img.shape[0]
        mean = img.float().mean((2, 3))
        texture = img.float() - mean[:, :, None, None]  # features: the texture, not the tint
        feats = torch.nn.functional.avg_pool2d(texture, 8).flatten(1)
        return mean / 20, feats


# tints: class 0 red, 1 green, 2 blue; within a class, a stronger tint is a higher score
POOL = {
    'red/r0.png': (210, 60, 60), 'red/r1.png': (190, 60, 60), 'red/r2.png': (170, 60, 60),
    'green/g0.png': (60, 200, 60), 'green/g1.png': (60, 180, 60),
    'green/deep/g2.png': (60, 160, 60),
    'blue/b0.png': (60, 60, 205), 'blue/b1.png': (60, 60, 175),
}


@pytest.fixture
def mining_data(tmp_path):
    pool, val = tmp_path / 'pool', tmp_path / 'val'
    for i, (rel, tint) in enumerate(POOL.items()):
        _textured(str(pool / rel), tint, seed=i)
    # val images, and near-duplicates planted in the pool: re-encoded as JPEG, resized
    _textured(str(val / 'v0.png'), (230, 60, 60), seed=100)   # would be the best red
    _textured(str(val / 'v1.png'), (60, 60, 230), seed=101)   # would be the best blue
    _textured(str(val / 'v2.png'), (90, 90, 90), seed=102)
    for name, dst in (('v0.png', 'planted/dup_red.jpg'), ('v1.png', 'blue/dup_blue.jpg')):
        im = Image.open(val / name).resize((44, 44), Image.Resampling.BILINEAR)
        (pool / dst).parent.mkdir(parents=True, exist_ok=True)
        im.save(pool / dst, format='JPEG', quality=75)
    (pool / 'green' / 'broken.png').write_bytes(b'\x89PNG\r\n garbage')
    (pool / 'readme.txt').write_text('ignored')
    return pool, val


def _selection(out) -> dict:
    rows = list(csv.DictReader(open(osp.join(out, 'selection.csv'))))
    by_class = {}
    for r in rows:
        by_class.setdefault(int(r['class']), []).append(r['path'])
    return by_class


def test_phash_numpy_fallback_matches_imagehash():
    imagehash = pytest.importorskip('imagehash')
    rng = np.random.default_rng(0)
    for _ in range(5):
        im = Image.fromarray(rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8))
        expect = np.asarray(imagehash.phash(im).hash).flatten()
        np.testing.assert_array_equal(mu.phash_bits_numpy(im), expect)
    a = mu.pack_hash(np.r_[np.ones(3, bool), np.zeros(61, bool)])
    b = mu.pack_hash(np.zeros(64, bool))
    assert mu.hamming(np.array([a]), np.array([b, a])).tolist() == [[3, 0]]


@pytest.mark.parametrize('dedup,backend', [('phash', 'auto'), ('phash', 'numpy'),
                                           ('feature', 'auto')])
def test_mining_topk_and_val_dedup(mining_data, tmp_path, dedup, backend):
    pool, val = mining_data
    out = tmp_path / 'out'
    with pytest.warns(UserWarning, match='broken.png'):
        summary = mu.mine(ColourScorer(), str(pool), str(val), topk=2, out=str(out),
                          batch_size=3, dedup=dedup, hash_backend=backend,
                          cosine_threshold=0.97, resize=32, crop=32, progress=False)
    sel = _selection(out)
    # the planted duplicates would rank first in red/blue; they are removed instead
    assert sel == {0: ['red/r0.png', 'red/r1.png'], 1: ['green/g0.png', 'green/g1.png'],
                   2: ['blue/b0.png', 'blue/b1.png']}
    assert sorted(d['path'] for d in summary['duplicates']) == [
        'blue/dup_blue.jpg', 'planted/dup_red.jpg']
    assert {d['path']: d['val'] for d in summary['duplicates']}['planted/dup_red.jpg'] == 'v0.png'
    assert summary['duplicates_removed'] == 2
    assert summary['num_unreadable'] == 1 and summary['unreadable'] == ['green/broken.png']
    assert summary['num_pool'] == 11 and summary['complete']
    assert summary['per_class']['0']['count'] == 2
    filelist = (out / 'filelist.txt').read_text().split()
    assert filelist == sorted(p for ps in sel.values() for p in ps)
    assert (out / 'score_hist.png').stat().st_size > 1000
    # without de-duplication the planted copies win their classes
    summary = mu.mine(ColourScorer(), str(pool), str(val), topk=1, out=str(tmp_path / 'o2'),
                      dedup='none', resize=32, crop=32, progress=False)
    assert _selection(tmp_path / 'o2') == {0: ['planted/dup_red.jpg'], 1: ['green/g0.png'],
                                           2: ['blue/dup_blue.jpg']}


def test_mining_resumes_and_skips_done_files(mining_data, tmp_path):
    pool, val = mining_data
    kw = dict(topk=2, batch_size=2, save_every=1, resize=32, crop=32, progress=False)
    ref = tmp_path / 'ref'
    mu.mine(ColourScorer(), str(pool), str(val), out=str(ref), **kw)
    out = tmp_path / 'out'
    scorer = ColourScorer()
    with pytest.warns(UserWarning):
        first = mu.mine(scorer, str(pool), str(val), out=str(out), max_batches=3, **kw)
    assert not first['complete'] and first['num_scored'] == 6
    parts = sorted(os.listdir(out / 'parts'))
    assert len(parts) == 3
    os.remove(out / 'parts' / parts[1])  # lose the second part: its 2 images are redone
    scorer = ColourScorer()
    summary = mu.mine(scorer, str(pool), str(val), out=str(out), **kw)
    assert scorer.seen == 11 - 4  # only the 7 images not in the remaining parts
    assert summary['complete'] and summary['num_scored'] == 11
    assert (out / 'filelist.txt').read_text() == (ref / 'filelist.txt').read_text()
    assert _selection(out) == _selection(ref)
    with pytest.raises(ValueError, match='dedup must be one of'):
        mu.mine(scorer, str(pool), str(val), topk=1, out=str(out), dedup='sift')


TINY_CLASSIFIER = """
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=3, in_channels=64,
              loss=dict(type='CrossEntropyLoss')),
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], to_rgb=True))
"""


@pytest.mark.slow
def test_mining_cli_with_a_tiny_mmpretrain_classifier(mining_data, tmp_path):
    pool, val = mining_data
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(TINY_CLASSIFIER)
    torch.manual_seed(0)
    scorer, _ = mu.build_scorer(str(cfg))
    ckpt = tmp_path / 'tiny.pth'
    model = MODELS.build(__import__('mmengine').Config.fromfile(str(cfg)).model)
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'ssld', 'mine_unlabeled.py'), str(cfg),
         '--checkpoint', str(ckpt), '--pool', str(pool), '--val', str(val), '--topk', '2',
         '--out', str(out), '--workers', '0', '--batch-size', '4', '--resize', '32',
         '--crop', '32', '--dedup', 'both', '--no-progress', '--device', 'cpu'],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['num_pool'] == 11 and summary['num_unreadable'] == 1
    assert {'blue/dup_blue.jpg', 'planted/dup_red.jpg'} <= {
        d['path'] for d in summary['duplicates']}
    entries = sum(v['count'] for v in summary['per_class'].values())
    assert entries == summary['num_selected_entries'] <= 3 * 2
    lines = (out / 'filelist.txt').read_text().split('\n')[:-1]
    assert lines and all(osp.isfile(pool / p) and ' ' not in p for p in lines)
    # the mined list feeds UnlabeledImageFolder directly
    ds = UnlabeledImageFolder(data_root=str(pool), ann_file=str(out / 'filelist.txt'))
    assert len(ds) == len(lines)


# ----------------------------------------------------------------------------- configs
SSLD_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'ssld', 'ssld_*.py')))
# Plain SSLD is ScaleKDDistiller(distill_stages=[], logit_loss=SymmetricKLLoss, label_free=True)
# with a logits-only timm CNN teacher. Tests shrink that teacher: same timm name (so the same
# architecture family and pretrained_cfg mean/std), tiny widths, pretrained=False (no network).
TINY_TIMM_RESNET = dict(layers=(1, 1, 1, 1), channels=(8, 16, 32, 64), stem_width=8)


def test_ssld_config_list():
    names = {osp.basename(p) for p in SSLD_CONFIGS}
    assert len(names) == 6 and sum('fixres320' in n for n in names) == 2
    assert sum('360e' in n for n in names) == 2


@pytest.mark.slow
@pytest.mark.parametrize('path', SSLD_CONFIGS, ids=osp.basename)
def test_ssld_configs_parse_and_build(path):
    from mmengine import Config
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmscalekd'
    model_cfg = cfg.model
    torch.manual_seed(0)
    if model_cfg.type == 'ScaleKDDistiller':
        assert model_cfg.label_free is True and model_cfg.distill_stages == []
        assert model_cfg.logit_loss.type == 'SymmetricKLLoss'
        assert model_cfg.teacher.type == 'TimmTeacher'
        import timm
        assert model_cfg.teacher.model_name in timm.list_models(pretrained=True)
        # the same timm teacher, shrunk and offline (see TINY_TIMM_RESNET)
        model_cfg.teacher = dict(type='TimmTeacher', model_name=model_cfg.teacher.model_name,
                                 pretrained=False, input_size=64,
                                 model_kwargs=TINY_TIMM_RESNET, allow_random_teacher=True)
        if '360e' in path:
            assert cfg.train_cfg.max_epochs == 360
            assert cfg.train_dataloader.dataset.type == 'LabeledUnlabeledDataset'
        else:
            assert cfg.load_from.endswith('360e_in1k-unlabeled/epoch_360.pth')
    model = MODELS.build(model_cfg)
    model.init_weights()
    x = torch.rand(2, 3, 64, 64) * 255
    if model_cfg.type == 'ScaleKDDistiller':
        assert model.teacher.family == 'cnn' and not hasattr(model.teacher, 'tpp_dims')
        assert model.teacher.final_dims == 256  # Bottleneck ResNe(X)t: 4 x channels[-1]
        model.train()
        data = model.data_preprocessor(dict(inputs=list(x.to(torch.uint8)),
                                            data_samples=[__import__('mmpretrain').structures
                                                          .DataSample() for _ in range(2)]), True)
        losses = model(**data, mode='loss')
        assert set(losses) == {'distill.loss_kd'}  # label-free: no label term
        assert torch.isfinite(losses['distill.loss_kd'])
    else:  # FixRes: only the FC is trainable
        from mmengine.optim import build_optim_wrapper
        assert 'fixres320' in path and cfg.train_dataloader.dataset.pipeline == \
            cfg.val_dataloader.dataset.pipeline
        model.train()  # MobileNetV3 applies frozen_stages in train(), as the Runner calls it
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        trainable = set()
        for group in wrapper.optimizer.param_groups:
            if group['lr'] > 0:
                trainable |= {id(p) for p in group['params'] if p.requires_grad}
        names = {n for n, p in model.named_parameters() if id(p) in trainable}
        assert names in ({'head.fc.weight', 'head.fc.bias'},
                         {'head.layers.1.fc.weight', 'head.layers.1.fc.bias'}), names


def test_ssld_stage_lr_multipliers():
    from mmengine import Config
    from mmengine.optim import build_optim_wrapper
    snippet = Config.fromfile(osp.join(REPO, 'configs', 'ssld', 'finetune_stage_lr_mult.py'))
    assert snippet.SSLD_CLS_MULTS == [0.1, 0.1, 0.2, 0.2, 0.3]
    model = MODELS.build(dict(type='ImageClassifier', backbone=dict(
        type='ResNetV1d', depth=18, base_channels=8), neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=64)))
    for keys, mults in ((snippet.SSLD_DET_LR_MULT, [0.05, 0.05, 0.05, 0.1, 0.15]),
                        (snippet.SSLD_CLS_LR_MULT, [0.1, 0.1, 0.2, 0.2, 0.3])):
        wrapper = build_optim_wrapper(model, dict(
            optimizer=dict(type='SGD', lr=1.0), paramwise_cfg=dict(custom_keys=keys)))
        lr_of = {}
        by_id = {id(p): n for n, p in model.named_parameters()}
        for g in wrapper.optimizer.param_groups:
            for p in g['params']:
                lr_of[by_id[id(p)]] = g['lr']
        assert lr_of['backbone.stem.0.conv.weight'] == pytest.approx(mults[0])
        for i in range(1, 5):
            assert lr_of[f'backbone.layer{i}.0.conv1.weight'] == pytest.approx(mults[i])
        assert lr_of['head.fc.weight'] == 1.0


# ----------------------------------------------------------------------------- Runner, no labels
@pytest.mark.slow
def test_label_free_training_on_an_unlabeled_folder(tmp_path):
    from mmengine import Config
    from mmengine.runner import Runner
    pool = tmp_path / 'pool'
    for i in range(6):
        _textured(str(pool / f'd{i % 2}' / f'{i}.png'), (40 * i, 100, 200 - 30 * i), seed=i)
    cfg = Config(dict(
        default_scope='mmscalekd', work_dir=str(tmp_path / 'work'),
        model=dict(
            type='ScaleKDDistiller',
            student=dict(type='ImageClassifier',
                         backbone=dict(type='ResNet', depth=18, base_channels=8),
                         neck=dict(type='GlobalAveragePooling'),
                         head=dict(type='LinearClsHead', num_classes=5, in_channels=64)),
            teacher=dict(type='TimmTeacher', model_name='resnet18', pretrained=False,
                         input_size=32, allow_random_teacher=True,
                         model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=5)),
            distill_stages=[], logit_loss=dict(type='SymmetricKLLoss'), label_free=True,
            data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3,
                                   std=[64.] * 3, to_rgb=True)),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            dataset=dict(type='UnlabeledImageFolder', data_root=str(pool), pipeline=[
                dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=32),
                dict(type='PackInputs')]),
            sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), randomness=dict(seed=0),
        log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    before = runner.model.student.head.fc.weight.detach().clone()
    runner.train()
    assert not torch.equal(before, runner.model.student.head.fc.weight)
    assert osp.isfile(tmp_path / 'work' / 'iter_3.pth')
    logs = runner.message_hub.get_scalar('train/distill.loss_kd')
    assert len(logs.data[0]) == 3 and np.isfinite(logs.data[0]).all()
    assert runner.message_hub.get_scalar('train/loss') is not None


@pytest.mark.slow
def test_partial_label_training_on_labeled_plus_unlabeled_batches(tmp_path):
    """Mixed batches: label term on the labeled samples only, SSLD loss on every sample."""
    from mmengine import Config
    from mmengine.runner import Runner
    labeled = _labeled_folder(tmp_path)  # cat: 2 images, dog: 1 -> classes ('cat', 'dog')
    pool = tmp_path / 'pool'
    for i in range(3):
        _textured(str(pool / f'{i}.png'), (40 * i, 100, 200 - 30 * i), seed=i)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)),
                dict(type='PackInputs')]
    cfg = Config(dict(
        default_scope='mmscalekd', work_dir=str(tmp_path / 'work'),
        # A unique name: runners built in the same second otherwise share one MessageHub,
        # and this test reads the hub's loss history.
        experiment_name=f'partial_labels_{tmp_path.name}',
        model=dict(
            type='ScaleKDDistiller',
            student=dict(type='ImageClassifier',
                         backbone=dict(type='ResNet', depth=18, base_channels=8),
                         neck=dict(type='GlobalAveragePooling'),
                         head=dict(type='LinearClsHead', num_classes=2, in_channels=64)),
            teacher=dict(type='TimmTeacher', model_name='resnet18', pretrained=False,
                         input_size=32, allow_random_teacher=True,
                         model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=2)),
            distill_stages=[], logit_loss=dict(type='SymmetricKLLoss'),
            partial_labels=True, label_loss_weight=0.5,
            data_preprocessor=dict(type='MixedLabelClsDataPreprocessor', mean=[128.] * 3,
                                   std=[64.] * 3, to_rgb=True, num_classes=2)),
        train_dataloader=dict(
            # 6 samples, batches of 4 in order: [L, L, L, U], [U, U], then [L, L, L, U] again
            batch_size=4, num_workers=0,
            dataset=dict(type='LabeledUnlabeledDataset',
                         labeled=dict(type='CustomDataset', data_root=str(labeled)),
                         unlabeled=dict(type='UnlabeledImageFolder', data_root=str(pool)),
                         pipeline=pipeline),
            sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), randomness=dict(seed=0),
        log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    before = runner.model.student.head.fc.weight.detach().clone()
    runner.train()
    assert runner.iter == 3 and osp.isfile(tmp_path / 'work' / 'iter_3.pth')
    assert not torch.equal(before, runner.model.student.head.fc.weight)
    label = np.asarray(runner.message_hub.get_scalar('train/student.loss').data[0])
    kd = np.asarray(runner.message_hub.get_scalar('train/distill.loss_kd').data[0])
    assert len(label) == len(kd) == 3 and np.isfinite(label).all() and np.isfinite(kd).all()
    # batches 1 and 3 have 3 labeled samples: 0.5 * CE > 0; batch 2 has none: an exact 0 term
    assert label[0] > 0 and label[2] > 0 and label[1] == 0
    assert (kd > 0).all()


# ----------------------------------------------------------------------------- registry cases
from tests.test_models.ssld_cases.registry_cases import CASES as SSLD_CASES  # noqa: E402


@pytest.mark.parametrize('case', SSLD_CASES, ids=lambda c: c['type'])
def test_ssld_registry_cases(case):
    from mmpretrain.structures import DataSample
    module = MODELS.build(case['cfg'])
    assert type(module).__name__ == case['type']
    imgs = [torch.full((3, 4, 4), 5 * (i + 1), dtype=torch.uint8) for i in range(3)]
    samples = [DataSample().set_gt_label(2), DataSample(), DataSample().set_gt_label(0)]
    out = module(dict(inputs=imgs, data_samples=samples), True)
    # (5 * (i + 1) - 1) / 2 per sample
    torch.testing.assert_close(out['inputs'][:, 0, 0, 0], torch.tensor([2.0, 4.5, 7.0]))
    ds = out['data_samples']
    assert [s.gt_label.tolist() for s in (ds[0], ds[2])] == [[2], [0]]
    assert ds[0].gt_score.tolist() == [0, 0, 1] and ds[2].gt_score.tolist() == [1, 0, 0]
    assert 'gt_label' not in ds[1] and 'gt_score' not in ds[1]
