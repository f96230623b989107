"""The mining library: hashing, de-duplication, top-k selection, resume, stale results, scoring."""
from __future__ import annotations

import csv
import io
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from mmscalekd.ssld.mining import (
    MiningOptions,
    MiningStateError,
    NearDuplicateIndex,
    Progress,
    TeacherScorer,
    hamming_nearest,
    load_scores,
    mine,
    phash64,
    resolve_pipeline,
)
from tests.test_ssld._helpers import (
    TINY_DISTILLER,
    random_teacher,
    textured,
    tiny_teacher_checkpoint,
)

PIPELINE = [dict(type='LoadImageFromFileOrSkip'), dict(type='Resize', scale=(32, 32)),
            dict(type='PackInputs')]


class ColourScorer:
    """Class c = RGB channel c: softmax of the mean R, G, B (0-255) / 20; features = texture.

    Packed images are BGR (``LoadImageFromFile``), so channel c of RGB is row ``2 - c``.
    """

    pipeline = PIPELINE
    classes = None

    def __init__(self, version: int = 1) -> None:
        self.seen = 0
        self.version = version

    def score(self, inputs):
        x = torch.stack(list(inputs)).float().flip(1)  # BGR -> RGB
        self.seen += x.shape[0]
        mean = x.mean((2, 3))
        texture = x - mean[:, :, None, None]
        feats = torch.nn.functional.avg_pool2d(texture, 8).flatten(1)
        return (mean / 20).softmax(1), torch.nn.functional.normalize(feats, dim=1)

    def fingerprint(self):
        return dict(scorer='colour', version=self.version)


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
        textured(str(pool / rel), tint, seed=i)
    # val images, and near-duplicates planted in the pool: re-encoded as JPEG, resized
    textured(str(val / 'v0.png'), (230, 60, 60), seed=100)   # would be the best red
    textured(str(val / 'v1.png'), (60, 60, 230), seed=101)   # would be the best blue
    textured(str(val / 'v2.png'), (90, 90, 90), seed=102)
    for name, dst in (('v0.png', 'planted/dup_red.jpg'), ('v1.png', 'blue/dup_blue.jpg')):
        im = Image.open(val / name).resize((44, 44), Image.Resampling.BILINEAR)
        (pool / dst).parent.mkdir(parents=True, exist_ok=True)
        im.save(pool / dst, format='JPEG', quality=75)
    (pool / 'green' / 'broken.png').write_bytes(b'\x89PNG\r\n garbage')
    (pool / 'readme.txt').write_text('ignored')
    return pool, val


def _opts(pool, val, out, **kw) -> MiningOptions:
    kw.setdefault('topk', 2)
    kw.setdefault('batch_size', 3)
    kw.setdefault('num_workers', 0)
    kw.setdefault('progress', False)
    return MiningOptions(pool=str(pool), val=str(val), out=str(out), **kw)


def _selection(out) -> dict:
    with open(osp.join(out, 'selection.csv'), newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    by_class = {}
    for r in rows:
        by_class.setdefault(int(r['class']), []).append(r['path'])
    return by_class


def _files(out) -> dict:
    """Every file under ``out`` with its content (to check that nothing changed)."""
    found = {}
    for root, _, names in os.walk(out):
        for n in names:
            with open(osp.join(root, n), 'rb') as f:
                found[osp.relpath(osp.join(root, n), out)] = f.read()
    return found


# ----------------------------------------------------------------------------- hashing, dedup
def test_phash64_is_imagehash_packed_and_reads_loaded_bgr_arrays():
    import imagehash
    rng = np.random.default_rng(0)
    for _ in range(4):
        rgb = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
        bits = np.asarray(imagehash.phash(Image.fromarray(rgb)).hash).flatten()
        expect = int(''.join('1' if b else '0' for b in bits), 2)
        assert int(phash64(Image.fromarray(rgb))) == expect
        assert int(phash64(rgb[..., ::-1].copy())) == expect  # BGR, as LoadImageFromFile gives
        grey = rgb[..., 0]
        grey_bits = np.asarray(imagehash.phash(Image.fromarray(grey)).hash).flatten()
        assert int(phash64(grey)) == int(''.join('1' if b else '0' for b in grey_bits), 2)
    with pytest.raises(ValueError, match=r'shape \(4, 4, 2\)'):
        phash64(np.zeros((4, 4, 2), np.uint8))


def test_hamming_nearest_matches_a_python_reference_in_any_block_size():
    rng = np.random.default_rng(1)
    refs = rng.integers(0, 2**63, size=37, dtype=np.uint64)
    queries = np.r_[rng.integers(0, 2**63, size=9, dtype=np.uint64), refs[5] ^ np.uint64(0b101),
                    refs[30]]
    ref_d = [[bin(int(q) ^ int(r)).count('1') for r in refs] for q in queries]
    want_d = [min(row) for row in ref_d]
    want_j = [row.index(min(row)) for row in ref_d]
    for block in (1, 7, 50, 1 << 20):
        j, d = hamming_nearest(queries, refs, block=block)
        assert d.tolist() == want_d and j.tolist() == want_j
        j4, d4 = hamming_nearest(queries, refs, max_distance=4, block=block)
        assert d4.tolist() == want_d
        assert j4.tolist() == [w if dd <= 4 else -1 for w, dd in zip(want_j, want_d)]
    assert j4[-2:].tolist() == [5, 30] and d4[-2:].tolist() == [2, 0]


def test_near_duplicate_index_thresholds_valid_mask_and_precedence():
    hashes = np.array([0, 0xFF, 0xFFFF], dtype=np.uint64)
    feats = torch.eye(3, 4)
    index = NearDuplicateIndex(hashes, feats, valid=np.array([True, False, True]),
                               phash_threshold=2, cosine_threshold=0.9, block=2)
    q_hash = np.array([0b11, 0xFF, 0xF0F0F0F0, 0x0F0F0F0F00000000], dtype=np.uint64)
    q_feat = torch.tensor([[0., 0., 1., 0.], [0., 1., 0., 0.], [1., 0., 0.05, 0.],
                           [0., 0., 0., 1.]])
    m = index.query(q_hash, q_feat)
    # 0: Hamming 2 to val 0 (pHash wins over its feature match with val 2)
    # 1: equal to val 1, but val 1 is unreadable; its feature matches val 1 too -> no match
    # 2: cosine 0.9988 with val 0; 3: nothing within the thresholds
    assert m.dup.tolist() == [True, False, True, False]
    assert m.dup_of.tolist() == [0, -1, 0, -1]
    assert m.kind.tolist() == [1, 0, 2, 0]
    assert m.distance[0] == 2 and m.distance[2] == pytest.approx(1 / np.sqrt(1.0025), abs=1e-6)
    with pytest.raises(ValueError, match='pass the batch hashes'):
        index.query(None, q_feat)


def test_progress_lines_give_rate_and_eta():
    now = [0.0]
    buf = io.StringIO()
    prog = Progress(1000, 'pool', interval_s=10, stream=buf, clock=lambda: now[0])
    now[0] = 5.0
    prog.update(100)  # before the interval: silent
    now[0] = 10.0
    prog.update(100)
    assert buf.getvalue() == 'pool: 200/1,000 images (20.0%), 20.0 img/s, ETA 0:00:40\n'
    now[0] = 11.0
    prog.update(800)  # the last update always prints
    assert buf.getvalue().splitlines()[-1].endswith('(100.0%), 90.9 img/s, ETA 0:00:00')


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize('field,value,match', [
    ('topk', 0, 'topk must be a positive int, got 0'),
    ('topk', True, 'topk must be a positive int'),
    ('dedup', 'sift', r"dedup must be one of \('phash', 'feature', 'both', 'none'\), got 'sift'"),
    ('phash_threshold', 65, r'phash_threshold must be an int in \[0, 64\].*got 65'),
    ('cosine_threshold', 1.5, r'cosine_threshold must be a number in \[-1, 1\], got 1.5'),
    ('cosine_threshold', float('nan'), 'cosine_threshold'),
    ('num_workers', -1, 'num_workers must be an int >= 0, got -1'),
    ('batch_size', 2.0, 'batch_size must be a positive int, got 2.0'),
    ('max_batches', 0, 'max_batches must be a positive int, got 0'),
    ('pool_list', 'no/such/list.txt', "pool_list 'no/such/list.txt' does not exist"),
])
def test_mining_options_name_the_bad_value(mining_data, tmp_path, field, value, match):
    pool, val = mining_data
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        _opts(pool, val, tmp_path / 'out', **{field: value})
    with pytest.raises(FileNotFoundError, match="pool folder '.*nope' does not exist"):
        _opts(tmp_path / 'nope', val, tmp_path / 'out')


# ----------------------------------------------------------------------------- selection
@pytest.mark.parametrize('dedup', ['phash', 'feature', 'both'])
def test_mining_topk_and_val_dedup(mining_data, tmp_path, dedup):
    pool, val = mining_data
    out = tmp_path / 'out'
    with pytest.warns(UserWarning, match='broken.png'):
        summary = mine(ColourScorer(), _opts(pool, val, out, dedup=dedup, cosine_threshold=0.97))
    sel = _selection(out)
    # the planted duplicates would rank first in red/blue; they are removed instead
    assert sel == {0: ['red/r0.png', 'red/r1.png'], 1: ['green/g0.png', 'green/g1.png'],
                   2: ['blue/b0.png', 'blue/b1.png']}
    assert sorted(d['path'] for d in summary['duplicates']) == [
        'blue/dup_blue.jpg', 'planted/dup_red.jpg']
    assert {d['path']: d['val'] for d in summary['duplicates']}['planted/dup_red.jpg'] == 'v0.png'
    assert {d['match'] for d in summary['duplicates']} == (
        {'feature'} if dedup == 'feature' else {'phash'})
    assert summary['duplicates_removed'] == 2
    assert summary['num_unreadable'] == 1 and summary['unreadable'] == ['green/broken.png']
    assert (out / 'unreadable.txt').read_text() == 'green/broken.png\n'
    assert summary['num_pool'] == 11 and summary['complete']
    assert summary['per_class']['0']['count'] == 2
    filelist = (out / 'filelist.txt').read_text().split('\n')
    assert filelist == sorted(p for ps in sel.values() for p in ps) + ['']
    assert (out / 'score_hist.png').stat().st_size > 1000
    with open(out / 'duplicates.csv', encoding='utf-8') as f:
        assert len(list(csv.DictReader(f))) == 2
    assert json.loads((out / 'summary.json').read_text())['fingerprint_digest'] == \
        json.loads((out / 'manifest.json').read_text())['digest']
    tp = summary['throughput']
    assert tp['world_size'] == 1 and tp['images_scored_this_run'] == 11
    assert tp['images_per_s'] > 0 and tp['dedup_images_per_s_per_process'] > 0


def test_without_dedup_the_planted_copies_win(mining_data, tmp_path):
    pool, val = mining_data
    with pytest.warns(UserWarning, match='broken.png'):
        mine(ColourScorer(), _opts(pool, val, tmp_path / 'o', topk=1, dedup='none'))
    assert _selection(tmp_path / 'o') == {0: ['planted/dup_red.jpg'], 1: ['green/g0.png'],
                                          2: ['blue/dup_blue.jpg']}


def test_mining_resumes_after_a_kill_and_cleans_its_leftovers(mining_data, tmp_path):
    pool, val = mining_data
    kw = dict(batch_size=2, save_every=1)
    ref = tmp_path / 'ref'
    with pytest.warns(UserWarning):
        mine(ColourScorer(), _opts(pool, val, ref, **kw))
    out = tmp_path / 'out'
    with pytest.warns(UserWarning):
        first = mine(ColourScorer(), _opts(pool, val, out, max_batches=3, **kw))
    assert not first['complete'] and first['num_scored'] == 6
    assert not (out / 'summary.json').exists() and not (out / 'filelist.txt').exists()
    assert json.loads((out / 'progress.json').read_text())['num_scored'] == 6
    parts = sorted(os.listdir(out / 'parts'))
    assert parts == [f'part-r00000-0000000{i}.npz' for i in (1, 2, 3)]
    os.remove(out / 'parts' / parts[1])  # lose the second part: its 2 images are redone
    # what a kill during a write leaves behind
    leftovers = [out / 'parts' / '.part-r00000-00000004.npz.tmp-4242',
                 out / '.summary.json.tmp-77', out / 'lists' / '.pool.txt.tmp-1']
    for p in leftovers:
        p.write_bytes(b'half written')
    scorer = ColourScorer()
    summary = mine(scorer, _opts(pool, val, out, **kw))
    assert scorer.seen == 11 - 4 - 1  # the 6 images not in the kept parts, less broken.png
    assert summary['complete'] and summary['num_scored'] == 11
    assert not any(p.exists() for p in leftovers)
    assert not (out / 'progress.json').exists()
    assert (out / 'filelist.txt').read_text() == (ref / 'filelist.txt').read_text()
    assert _selection(out) == _selection(ref)
    # a rerun with the same options scores nothing and writes the same outputs
    scorer = ColourScorer()
    again = mine(scorer, _opts(pool, val, out, **kw))
    assert scorer.seen == 0 and again['num_selected_images'] == summary['num_selected_images']
    assert _selection(out) == _selection(ref)


def test_other_teacher_or_thresholds_are_refused_not_mixed(mining_data, tmp_path):
    pool, val = mining_data
    out = tmp_path / 'out'
    with pytest.warns(UserWarning):
        mine(ColourScorer(version=1), _opts(pool, val, out))
    before = _files(out)
    # another teacher (its fingerprint differs): nothing is scored, nothing changes
    with pytest.raises(MiningStateError, match=r'(?s)scorer\.version: 1 -> 2.*--force'):
        mine(ColourScorer(version=2), _opts(pool, val, out))
    with pytest.raises(MiningStateError, match=r'phash_threshold: 4 -> 6'):
        mine(ColourScorer(version=1), _opts(pool, val, out, phash_threshold=6))
    with pytest.raises(MiningStateError, match=r'classes_per_image: 10 -> 2'):
        mine(ColourScorer(version=1), _opts(pool, val, out, classes_per_image=2))
    assert _files(out) == before
    # --force: the old parts are discarded, everything is scored again, one fingerprint
    scorer = ColourScorer(version=2)
    with pytest.warns(UserWarning):
        summary = mine(scorer, _opts(pool, val, out, force=True))
    assert scorer.seen == 10  # every readable pool image again
    assert summary['fingerprint']['scorer'] == dict(scorer='colour', version=2)
    assert os.listdir(out / 'parts') == ['part-r00000-00000001.npz']


def test_a_new_topk_needs_force_and_reuses_the_stored_scores(mining_data, tmp_path):
    pool, val = mining_data
    out = tmp_path / 'out'
    with pytest.warns(UserWarning):
        mine(ColourScorer(), _opts(pool, val, out, topk=2))
    before = _files(out)
    with pytest.raises(MiningStateError, match=r'(?s)complete selection.*topk: 2 -> 1.*reused'):
        mine(ColourScorer(), _opts(pool, val, out, topk=1))
    assert _files(out) == before
    scorer = ColourScorer()
    summary = mine(scorer, _opts(pool, val, out, topk=1, force=True))
    assert scorer.seen == 0 and summary['topk'] == 1
    assert _selection(out) == {0: ['red/r0.png'], 1: ['green/g0.png'], 2: ['blue/b0.png']}


def test_parts_of_an_unknown_origin_are_refused(mining_data, tmp_path):
    pool, val = mining_data
    out = tmp_path / 'out'
    (out / 'parts').mkdir(parents=True)
    np.savez(out / 'parts' / 'part_000000000.npz', paths=np.array(['red/r0.png']))
    with pytest.raises(MiningStateError, match='without a manifest.json'):
        mine(ColourScorer(), _opts(pool, val, out))


def test_the_mined_list_round_trips_any_file_name(tmp_path):
    """Spaces, a leading '#', quotes, unicode and undecodable bytes reach UnlabeledImageFolder."""
    from mmscalekd.datasets import UnlabeledImageFolder
    pool, val = tmp_path / 'pool', tmp_path / 'val'
    names = ['my photo.png', '#first.png', '"quoted".png', 'tab\tand  spaces .png',
             'ünï cødé 日本.png', 'line\u2028sep.png', 'back\\slash.png', 'new\nline.png']
    for i, name in enumerate(names):
        textured(str(pool / 'c' / name), (200, 60 + i, 60), seed=i)
    odd = os.fsencode(str(pool / 'c')) + b'/raw\xff\xfe.png'
    textured(os.fsdecode(odd), (60, 200, 60), seed=99)
    textured(str(val / 'v.png'), (10, 10, 10), seed=50)
    out = tmp_path / 'out'
    mine(ColourScorer(), _opts(pool, val, out, topk=20))
    want = sorted('c/' + n for n in names + [os.fsdecode(b'raw\xff\xfe.png')])
    ds = UnlabeledImageFolder(data_root=str(pool), ann_file=str(out / 'filelist.txt'),
                              pipeline=PIPELINE)
    got = sorted(osp.relpath(ds.get_data_info(i)['img_path'], str(pool)) for i in range(len(ds)))
    assert got == want
    assert tuple(ds[0]['inputs'].shape) == (3, 32, 32)
    with open(out / 'selection.csv', newline='', encoding='utf-8',
              errors='surrogateescape') as f:
        assert {r['path'] for r in csv.DictReader(f)} == set(want)


# ----------------------------------------------------------------------------- teacher scoring
def _reference_scores(config: str, checkpoint: str, root, pipeline=None) -> dict:
    """Teacher top-P on every file through the config's test pipeline, without mining code."""
    from mmengine import Config
    from mmengine.dataset import pseudo_collate

    from mmscalekd.datasets import UnlabeledImageFolder
    from mmscalekd.registry import MODELS
    cfg = Config.fromfile(config)
    cfg.model.teacher.checkpoint = checkpoint
    model = MODELS.build(cfg.model).eval()
    ds = UnlabeledImageFolder(data_root=str(root), pipeline=pipeline or cfg.test_pipeline)
    out = {}
    for i in range(len(ds)):
        data = model.data_preprocessor(pseudo_collate([ds[i]]), False)
        with torch.no_grad():
            logits = model.teacher.forward_targets(data['inputs'], with_logits=True).logits
        s, c = logits.softmax(1)[0].topk(min(10, logits.shape[1]))
        out[osp.relpath(ds.get_data_info(i)['img_path'], str(root))] = (c.numpy(), s.numpy())
    return out


def test_scores_equal_the_teachers_predictions_through_the_test_pipeline(mining_data, tmp_path):
    pool, val = mining_data
    (pool / 'green' / 'broken.png').unlink()
    config = tmp_path / 'tiny.py'
    config.write_text(TINY_DISTILLER)
    ckpt = tiny_teacher_checkpoint(str(config), str(tmp_path / 'teacher.pth'))
    scorer = TeacherScorer.from_config(str(config), ckpt)
    assert scorer.pipeline[0]['type'] == 'LoadImageFromFileOrSkip'
    assert scorer.pipeline[1:] == [dict(type='ResizeEdge', scale=40, edge='short'),
                                   dict(type='CenterCrop', crop_size=32), dict(type='PackInputs')]
    out = tmp_path / 'out'
    mine(scorer, _opts(pool, val, out, dedup='both', topk=1))
    got = load_scores(str(out))
    want = _reference_scores(str(config), ckpt, pool)
    assert sorted(got) == sorted(want) and len(got) == 10
    for path, (cls, score) in want.items():
        np.testing.assert_array_equal(got[path][0], cls)
        np.testing.assert_allclose(got[path][1], score, rtol=0, atol=1e-6)
    fp = json.loads((out / 'manifest.json').read_text())['fingerprint']['scorer']
    assert fp['teacher']['weights_sha256'] == scorer.weights_sha256
    assert fp['teacher']['mean'] == [127.5] * 3 and fp['teacher']['input_size'] == [28, 28]
    assert fp['preprocessing']['data_preprocessor']['mean'] == pytest.approx(
        [123.675, 116.28, 103.53])
    # other weights: another fingerprint, so the stored scores are refused
    other = tiny_teacher_checkpoint(str(config), str(tmp_path / 'other.pth'), seed=1)
    with pytest.raises(MiningStateError, match='weights_sha256'):
        mine(TeacherScorer.from_config(str(config), other), _opts(pool, val, out, topk=1,
                                                                  dedup='both'))


ONE_CHANNEL = """
default_scope = 'mmscalekd'
model = dict(
    type='ScaleKDDistiller',
    student=dict(type='ImageClassifier',
                 backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=1, stem_channels=8,
                               base_channels=8),
                 neck=dict(type='GlobalAveragePooling'),
                 head=dict(type='LinearClsHead', num_classes=4, in_channels=64)),
    teacher=dict(type='MMPretrainViTTeacher', tpp_blocks=1, model=dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', img_size=28, patch_size=7, in_channels=1,
                      arch=dict(embed_dims=16, num_layers=2, num_heads=2,
                                feedforward_channels=32), out_type='cls_token'),
        neck=None, head=dict(type='VisionTransformerClsHead', num_classes=4, in_channels=16))),
    distill_stages=[], logit_loss=dict(type='SymmetricKLLoss'), label_free=True,
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[72.93], std=[90.02]))
# an array dataset: its pipeline reads no files
test_dataloader = dict(dataset=dict(type='ArrayFashionMNIST', pipeline=[dict(type='PackInputs')]))
"""


def test_one_channel_configs_are_scored_in_grey(tmp_path):
    """A 1-channel teacher whose test pipeline reads no files: grey loading + teacher size."""
    pool, val = tmp_path / 'pool', tmp_path / 'val'
    for i in range(5):
        textured(str(pool / f'{i}.png'), (40 * i, 90, 200 - 30 * i), seed=i, size=24 + 8 * i)
    textured(str(val / 'v.png'), (1, 2, 3), seed=9)
    config = tmp_path / 'one_channel.py'
    config.write_text(ONE_CHANNEL)
    ckpt = tmp_path / 'vit.pth'
    from mmengine import Config

    from mmscalekd.registry import MODELS
    teacher = MODELS.build(random_teacher(Config.fromfile(str(config)).model.teacher))
    torch.save(dict(state_dict=teacher.model.state_dict()), ckpt)
    scorer = TeacherScorer.from_config(str(config), str(ckpt))
    assert scorer.pipeline[:2] == [dict(type='LoadImageFromFileOrSkip', color_type='grayscale'),
                                   dict(type='Resize', scale=(28, 28))]
    assert 'reads no files' in scorer.description['pipeline_notes'][0]
    out = tmp_path / 'out'
    mine(scorer, _opts(pool, val, out, dedup='both', topk=1))
    grey = [dict(type='LoadImageFromFile', color_type='grayscale'),
            dict(type='Resize', scale=(28, 28)), dict(type='PackInputs')]
    want = _reference_scores(str(config), str(ckpt), pool, grey)
    got = load_scores(str(out))
    assert sorted(got) == sorted(want) == [f'{i}.png' for i in range(5)]
    for path in want:
        np.testing.assert_allclose(got[path][1], want[path][1], atol=1e-6)


def test_resolve_pipeline_rejects_what_cannot_be_mined():
    with pytest.raises(ValueError, match='must end with PackInputs'):
        resolve_pipeline([dict(type='LoadImageFromFile')], 3, (8, 8))
    with pytest.raises(ValueError, match='must read the image first'):
        resolve_pipeline([dict(type='CenterCrop', crop_size=8), dict(type='LoadImageFromFile'),
                          dict(type='PackInputs')], 3, (8, 8))
    kept, notes = resolve_pipeline([dict(type='LoadImageFromFileOrSkip', to_float32=True),
                                    dict(type='PackInputs')], 3, (8, 8))
    assert kept[0] == dict(type='LoadImageFromFileOrSkip', to_float32=True) and notes == []


def test_configs_that_cannot_score_fail_early(tmp_path):
    base = tmp_path / 'tiny.py'
    base.write_text(TINY_DISTILLER)
    # a teacher without weights would rank images by noise (the message is the mining tool's
    # or, where the adapter checks it itself, the adapter's)
    with pytest.raises(ValueError, match='allow_random_teacher'):
        TeacherScorer.from_config(str(base))
    with pytest.warns(UserWarning):
        TeacherScorer.from_config(str(base), cfg_options={
            'model.teacher.allow_random_teacher': True})
    classifier = tmp_path / 'classifier.py'
    classifier.write_text("model = dict(type='ImageClassifier', backbone=dict(type='ResNet', "
                          "depth=18), head=dict(type='LinearClsHead', num_classes=3, "
                          "in_channels=512))\n")
    with pytest.raises(TypeError, match=r"model type 'ImageClassifier'.*teacher adapter"):
        TeacherScorer.from_config(str(classifier))
    no_pipeline = tmp_path / 'no_pipeline.py'
    no_pipeline.write_text(TINY_DISTILLER.split('test_pipeline')[0])
    with pytest.raises(ValueError, match='has no test pipeline'):
        TeacherScorer.from_config(str(no_pipeline), cfg_options={
            'model.teacher.allow_random_teacher': True})
    with pytest.raises(ValueError, match="precision='fp16' needs a CUDA device"):
        TeacherScorer.from_config(str(base), precision='fp16', cfg_options={
            'model.teacher.allow_random_teacher': True})


def test_a_bare_teacher_adapter_config_scores_raw_rgb(tmp_path):
    """model = a teacher adapter, no data_preprocessor: the adapter normalises raw RGB."""
    config = tmp_path / 'teacher.py'
    config.write_text(
        "model = dict(type='TimmTeacher', model_name='resnet18', pretrained=False, "
        "input_size=16, model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=3), "
        "mean=[100.0, 110.0, 120.0], std=[50.0, 55.0, 60.0], allow_random_teacher=True)\n"
        "test_pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(16, 16)), "
        "dict(type='PackInputs')]\n")
    with pytest.warns(UserWarning):  # a random teacher, allowed
        scorer = TeacherScorer.from_config(str(config))
    bgr = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
    probs, _ = scorer.score([bgr])
    rgb = bgr.flip(0).float()[None]
    mean = torch.tensor([100.0, 110.0, 120.0]).view(1, 3, 1, 1)
    std = torch.tensor([50.0, 55.0, 60.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = scorer.teacher.model.forward_head(
            scorer.teacher.model.forward_features((rgb - mean) / std))
    torch.testing.assert_close(probs, logits.softmax(1))


def test_dedup_benchmark_finds_the_planted_copies(tmp_path):
    """tools/analysis_tools/benchmark_dedup.py measures the real index (no timing asserted)."""
    import importlib.util

    from tests.test_ssld._helpers import REPO
    spec = importlib.util.spec_from_file_location(
        'benchmark_dedup', osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_dedup.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / 'bench.json'
    bench.main(['--refs', '300', '--dim', '16', '--batch', '8', '--seconds', '0.01',
                '--out', str(out)])
    result = json.loads(out.read_text())
    assert set(result['modes']) == {'phash', 'feature', 'both'} and result['refs'] == 300
    for mode in result['modes'].values():
        found, total = mode['planted_found'].split('/')
        assert found == total and int(total) >= 32 and mode['images_per_s'] > 0


def test_a_pretrained_timm_teacher_keeps_its_weights(tmp_path, monkeypatch):
    """pretrained=True weights (here a stand-in, offline) are not re-initialised for mining."""
    import timm
    create = timm.create_model

    def fake_pretrained(name, pretrained=False, **kwargs):
        model = create(name, pretrained=False, **kwargs)
        if pretrained:  # what a download would give: fixed, non-random weights
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(0.01)
        return model

    monkeypatch.setattr(timm, 'create_model', fake_pretrained)
    config = tmp_path / 'tiny.py'
    config.write_text(TINY_DISTILLER.replace('pretrained=False', 'pretrained=True'))
    scorer = TeacherScorer.from_config(str(config))
    assert all(bool((p == 0.01).all()) for p in scorer.teacher.model.parameters())
