"""End-to-end: distil -> extract -> evaluate -> detector / segmentor.

One tiny ScaleKD distillation (a random-init 4-stage Swin teaching a ResNet-18-D layout with 8
base channels, 64 px, 16 generated images) is trained once per module by ``tools/train.py`` in a
subprocess, exactly as a user starts it. The tests then check that

* ``extract_student.py`` gives a checkpoint that loads strictly into a plain mmpretrain
  ``ImageClassifier`` built from the student's own config and predicts what the distiller
  predicts, and ``tools/test.py`` scores the distiller checkpoint and the student checkpoint alike;
* ``extract_student.py --backbone-only`` feeds our downstream Mask R-CNN and UperNet configs
  (shrunk to that backbone) through their ``init_cfg`` Pretrained mechanism, and both train one
  step and predict on small generated COCO / ADE20K-layout data through their own pipelines.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Dict, List

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.structures import DataSample

from mmscalekd.registry import MODELS
from mmscalekd.utils import safe_torch_load

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CFG_DIR = ROOT / 'tests/data/configs'
DISTILL_CFG = CFG_DIR / 'tiny_e2e_scalekd.py'
STUDENT_CFG = CFG_DIR / 'tiny_e2e_student.py'
MMDET_CFG = ROOT / 'configs/downstream/mmdet/mask-rcnn_scalekd-swin-l-resnet50_fpn_1x_coco.py'
MMSEG_CFG = (ROOT / 'configs/downstream/mmseg/'
             'upernet_scalekd-swin-l-resnet50_4xb4-160k_ade20k-512x512.py')
# Stage widths of the tiny student (ResNet-18-D, base_channels=8; BasicBlock: expansion 1).
TINY_BACKBONE = dict(depth=18, stem_channels=8, base_channels=8)
TINY_WIDTHS = [8, 16, 32, 64]
NUM_IMAGES = 16


def _load_tool(rel_path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(Path(rel_path).stem + '_e2e', ROOT / rel_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mmcv_ops() -> bool:
    try:
        import mmcv.ops  # noqa: F401  (needs the compiled mmcv._ext)
    except Exception:  # mmcv-lite
        return False
    return True


needs_mmcv_ops = pytest.mark.skipif(not _mmcv_ops(),
                                    reason='needs compiled mmcv ops (RoIAlign, NMS)')


def _write_image_folder(root: Path) -> None:
    """16 random 64x64 PNGs in two class folders (CustomDataset layout)."""
    rng = np.random.default_rng(0)
    for c, cls in enumerate(('cat', 'dog')):
        (root / cls).mkdir(parents=True)
        for i in range(NUM_IMAGES // 2):
            img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            img[..., c] //= 2  # a weak class cue; the test does not rely on it
            cv2.imwrite(str(root / cls / f'{i}.png'), img)


def _run(cmd: List[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


def _scalars(work_dir: Path) -> List[dict]:
    (path, ) = work_dir.glob('*/vis_data/scalars.json')
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture(scope='module')
def distilled(tmp_path_factory) -> SimpleNamespace:
    """Train the tiny distiller for 3 iterations and extract its student both ways."""
    root = tmp_path_factory.mktemp('e2e')
    images = root / 'images'
    _write_image_folder(images)

    # A random-init teacher saved as a plain state dict (what a released teacher file holds).
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(str(DISTILL_CFG)).model.teacher.model)
    teacher.init_weights()
    torch.save({'state_dict': teacher.state_dict()}, root / 'teacher.pth')
    data_opts = [f'{split}_dataloader.dataset.data_root={images}'
                 for split in ('train', 'val', 'test')]
    teacher_opt = f'model.teacher.checkpoint={root / "teacher.pth"}'

    work_dir = root / 'work'
    _run([PY, 'tools/train.py', str(DISTILL_CFG), '--work-dir', str(work_dir),
          '--cfg-options', teacher_opt, *data_opts])
    ckpt = work_dir / 'iter_3.pth'
    assert ckpt.is_file()

    extract = _load_tool('tools/model_converters/extract_student.py')
    extract.main([str(ckpt), str(root / 'student.pth')])
    extract.main([str(ckpt), str(root / 'student_backbone.pth'), '--backbone-only'])
    return SimpleNamespace(root=root, images=images, work_dir=work_dir, ckpt=ckpt,
                           student=root / 'student.pth', backbone=root / 'student_backbone.pth',
                           teacher_opt=teacher_opt, data_opts=data_opts,
                           scalars=_scalars(work_dir))


def _image_batch(images: Path) -> dict:
    """All test images as the dataloader gives them: uint8 BGR (3, H, W) + data samples."""
    paths = sorted(images.glob('*/*.png'))
    inputs = [torch.from_numpy(cv2.imread(str(p))).permute(2, 0, 1).contiguous() for p in paths]
    samples = [DataSample(metainfo=dict(img_path=str(p))) for p in paths]
    return dict(inputs=inputs, data_samples=samples)


def _build_with_preprocessor(cfg_path: Path, options: Dict[str, str]) -> torch.nn.Module:
    cfg = Config.fromfile(str(cfg_path))
    cfg.merge_from_dict(options)
    model_cfg = cfg.model.to_dict()
    model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor.to_dict())  # as the Runner
    return MODELS.build(model_cfg)


# ------------------------------------------------- distil, extract, evaluate the student
def test_distillation_run_logged_all_losses(distilled: SimpleNamespace) -> None:
    losses = [r for r in distilled.scalars if 'loss' in r]
    assert [r['step'] for r in losses] == [1, 2, 3]
    # LinearClsHead's own key is 'loss'.
    keys = {'student.loss', 'distill.loss_kd', 'distill.loss_s3_spatial',
            'distill.loss_s3_freq', 'distill.loss_s4_spatial', 'distill.loss_s4_freq'}
    for record in losses:
        assert keys <= set(record), sorted(record)
        assert all(math.isfinite(record[k]) and record[k] > 0 for k in keys)
        assert record['loss'] == pytest.approx(sum(record[k] for k in keys), rel=1e-4)
    assert [r['step'] for r in distilled.scalars if 'accuracy/top1' in r] == [3]

    ckpt = safe_torch_load(distilled.ckpt)
    assert ckpt['meta']['iter'] == 3
    prefixes = {k.split('.')[0] for k in ckpt['state_dict']}
    # The teacher reloads from its own checkpoint: not stored, but named in meta.
    assert prefixes == {'student', 'connectors'}
    assert ckpt['meta']['teacher']['sha256'] is not None
    # Every trainable parameter (student + connectors; the frozen teacher's are in the
    # optimizer too but never get a gradient) was updated: SGD keeps a momentum buffer exactly
    # for the parameters that had a gradient, and they are nonzero.
    state = ckpt['optimizer']['state']
    n_trainable = sum(1 for k in ckpt['state_dict'] if k.startswith(('student.', 'connectors.'))
                      and not k.endswith(('running_mean', 'running_var', 'num_batches_tracked')))
    assert len(state) == n_trainable > 0
    assert all(s['momentum_buffer'].abs().sum() > 0 for s in state.values())

def test_extracted_student_predicts_like_the_distiller(distilled: SimpleNamespace) -> None:
    classifier = _build_with_preprocessor(STUDENT_CFG, {})
    assert type(classifier).__name__ == 'ImageClassifier'
    initial_fc = classifier.head.fc.weight.detach().clone()
    load_checkpoint(classifier, str(distilled.student), map_location='cpu', strict=True)
    assert not torch.equal(classifier.head.fc.weight, initial_fc)

    distiller = _build_with_preprocessor(
        DISTILL_CFG, {'model.teacher.checkpoint': str(distilled.root / 'teacher.pth')})
    assert type(distiller).__name__ == 'ScaleKDDistiller'
    distiller.load_state_dict(safe_torch_load(distilled.ckpt)['state_dict'], strict=True)
    # The extracted weights are the distiller's student weights, bit for bit.
    for name, value in classifier.state_dict().items():
        torch.testing.assert_close(value, distiller.student.state_dict()[name], rtol=0, atol=0)

    classifier.eval()
    distiller.eval()
    batch = _image_batch(distilled.images)
    with torch.no_grad():
        ours = classifier.test_step(batch)
        theirs = distiller.test_step(batch)
    assert len(ours) == len(theirs) == NUM_IMAGES
    for a, b in zip(ours, theirs):
        assert a.pred_score.shape == (2, )
        torch.testing.assert_close(a.pred_score, b.pred_score)
        assert int(a.pred_label) == int(b.pred_label)
    # Not a constant prediction: the scores depend on the image.
    assert not torch.allclose(ours[0].pred_score, ours[1].pred_score)


def test_test_tool_scores_distiller_and_student_alike(distilled: SimpleNamespace) -> None:
    test_tool = _load_tool('tools/test.py')
    opts = ['--cfg-options', f'test_dataloader.dataset.data_root={distilled.images}']
    root = distilled.root
    m_distill = test_tool.main([str(DISTILL_CFG), str(distilled.ckpt), '--work-dir',
                                str(root / 'test_d'), '--out', str(root / 'd.pkl'), *opts])
    m_student = test_tool.main([str(STUDENT_CFG), str(distilled.student), '--work-dir',
                                str(root / 'test_s'), '--out', str(root / 's.pkl'), *opts])
    assert set(m_distill) == set(m_student) == {'accuracy/top1'}
    assert m_distill['accuracy/top1'] == m_student['accuracy/top1']
    # ... which is the validation accuracy the training run logged at the same iteration,
    (val, ) = [r['accuracy/top1'] for r in distilled.scalars if 'accuracy/top1' in r]
    assert m_student['accuracy/top1'] == pytest.approx(val)
    # ... and the share of correct predictions, recounted from the dumped predictions.
    preds = {}
    for name in ('d', 's'):
        with open(root / f'{name}.pkl', 'rb') as f:
            preds[name] = pickle.load(f)
    assert len(preds['d']) == len(preds['s']) == NUM_IMAGES
    for d, s in zip(preds['d'], preds['s']):
        torch.testing.assert_close(d['pred_score'], s['pred_score'])
    correct = sum(int(p['pred_label']) == int(p['gt_label']) for p in preds['s'])
    assert m_student['accuracy/top1'] == pytest.approx(100 * correct / NUM_IMAGES)


# ------------------------------------------- the student as a detector / segmentor backbone
def _backbone_weights(path: Path) -> Dict[str, torch.Tensor]:
    state = safe_torch_load(path)['state_dict']
    assert state and all(k.startswith('backbone.') for k in state)
    return {k[len('backbone.'):]: v for k, v in state.items()}


def _downstream_cfg(path: Path, checkpoint: Path, options: Dict[str, object]) -> Config:
    """One of our downstream configs with the tiny student's backbone and the given overrides."""
    cfg = Config.fromfile(str(path))
    assert cfg.model.backbone.type == 'mmpretrain.ResNetV1d'
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    cfg.merge_from_dict({
        **{f'model.backbone.{k}': v for k, v in TINY_BACKBONE.items()},
        'model.backbone.init_cfg.checkpoint': str(checkpoint),
        **options,
    })
    return cfg


def _check_backbone_loaded(model: torch.nn.Module, distilled: SimpleNamespace) -> None:
    """After init_weights() the backbone holds the distilled student's backbone, exactly."""
    expected = _backbone_weights(distilled.backbone)
    trained = safe_torch_load(distilled.ckpt)['state_dict']
    got = model.backbone.state_dict()
    assert set(got) == set(expected)
    for name, value in got.items():
        torch.testing.assert_close(value, expected[name], rtol=0, atol=0)
        torch.testing.assert_close(value, trained[f'student.backbone.{name}'], rtol=0, atol=0)


def _check_backbone_grads(model: torch.nn.Module, frozen: tuple = ()) -> None:
    grads = {n: p.grad for n, p in model.backbone.named_parameters()}
    for name, grad in grads.items():
        if name.startswith(frozen):
            assert grad is None, name
        else:
            assert grad is not None and torch.isfinite(grad).all(), name
    assert grads['layer4.1.conv2.weight'].abs().sum() > 0
    assert grads['layer2.0.conv1.weight'].abs().sum() > 0


def _write_coco(root: Path, num: int = 2, hw: tuple = (120, 160)) -> None:
    """``num`` images, each with one box and a polygon mask (a triangle) of a 'person'."""
    rng = np.random.default_rng(1)
    (root / 'imgs').mkdir(parents=True)
    images, annotations = [], []
    for i in range(num):
        img = rng.integers(0, 80, (*hw, 3), dtype=np.uint8)
        x0, y0, w, h = 24 + 10 * i, 20, 80, 60
        poly = [x0, y0 + h, x0 + w / 2, y0, x0 + w, y0 + h]  # a triangle inside the box
        cv2.fillPoly(img, [np.array(poly, np.int32).reshape(-1, 2)], (200, 180, 160))
        cv2.imwrite(str(root / 'imgs' / f'{i}.jpg'), img)
        images.append(dict(id=i + 1, file_name=f'{i}.jpg', height=hw[0], width=hw[1]))
        annotations.append(dict(id=i + 1, image_id=i + 1, category_id=1, bbox=[x0, y0, w, h],
                                area=w * h / 2, segmentation=[poly], iscrowd=0))
    (root / 'ann.json').write_text(json.dumps(dict(
        images=images, annotations=annotations,
        categories=[dict(id=1, name='person', supercategory='person')])))


def _write_ade(root: Path, num: int = 2, hw: tuple = (80, 96)) -> None:
    """ADE20K layout: images/training/*.jpg and annotations/training/*.png (0 = ignored)."""
    rng = np.random.default_rng(2)
    (root / 'images/training').mkdir(parents=True)
    (root / 'annotations/training').mkdir(parents=True)
    for i in range(num):
        label = np.zeros(hw, np.uint8)
        label[:, : hw[1] // 3] = 1
        label[:, hw[1] // 3: 2 * hw[1] // 3] = 2
        label[hw[0] // 2:, 2 * hw[1] // 3:] = 3  # top-right quarter stays 0 (ignored)
        img = (label[..., None] * 60 + rng.integers(0, 40, (*hw, 3))).astype(np.uint8)
        cv2.imwrite(str(root / f'images/training/{i}.jpg'), img)
        cv2.imwrite(str(root / f'annotations/training/{i}.png'), label)


def _first(pipeline: list, type_name: str) -> dict:
    return next(step for step in pipeline if step['type'] == type_name)


@needs_mmcv_ops
def test_mask_rcnn_from_downstream_config_loads_student_and_trains(
        distilled: SimpleNamespace) -> None:
    import mmdet.models  # noqa: F401
    from mmdet.utils import register_all_modules
    data_root = distilled.root / 'coco'
    _write_coco(data_root)
    cfg = _downstream_cfg(MMDET_CFG, distilled.backbone, {
        'model.neck.in_channels': TINY_WIDTHS,
        'model.test_cfg.rcnn.score_thr': 0.0,  # random heads: keep the boxes so masks run
    })
    for split in ('train_dataloader', 'val_dataloader'):
        dataset = cfg[split].dataset
        dataset.update(data_root=str(data_root), ann_file='ann.json',
                       data_prefix=dict(img='imgs/'))
        # 160x120 images -> 128x96 (the config's (1333, 800) would upscale them).
        _first(dataset.pipeline, 'Resize').scale = (128, 96)

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        from mmdet.registry import DATASETS
        from mmdet.registry import MODELS as DET_MODELS
        model = DET_MODELS.build(cfg.model)
        assert type(model).__name__ == 'MaskRCNN'
        assert type(model.backbone).__module__.startswith('mmpretrain')
        model.init_weights()
        _check_backbone_loaded(model, distilled)

        train_set = DATASETS.build(cfg.train_dataloader.dataset)
        val_set = DATASETS.build(cfg.val_dataloader.dataset)
        assert len(train_set) == len(val_set) == 2
        model.train()
        data = model.data_preprocessor(pseudo_collate([train_set[0], train_set[1]]), True)
        assert data['inputs'].shape == (2, 3, 96, 128)
        gt = data['data_samples'][0].gt_instances
        assert len(gt.bboxes) == 1 and gt.masks.masks.shape[-2:] == (96, 128)
        losses = model(**data, mode='loss')
        loss, log_vars = model.parse_losses(losses)
        for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'):
            assert math.isfinite(log_vars[key]), key
        assert torch.isfinite(loss)
        loss.backward()
        # frozen_stages=1 (the config's): stem and layer1 get no gradient, the rest do.
        _check_backbone_grads(model, frozen=('stem.', 'layer1.'))

        model.eval()
        with torch.no_grad():
            (pred, ) = model.test_step(pseudo_collate([val_set[0]]))
    instances = pred.pred_instances
    assert pred.ori_shape == (120, 160)  # predictions are mapped back to the image
    assert len(instances.bboxes) > 0 and instances.bboxes.shape[-1] == 4
    assert instances.masks.shape == (len(instances.bboxes), 120, 160)
    assert torch.isfinite(instances.scores).all()


@needs_mmcv_ops
def test_upernet_from_downstream_config_loads_student_and_trains(
        distilled: SimpleNamespace) -> None:
    import mmseg.models  # noqa: F401
    from mmengine.model import revert_sync_batchnorm
    from mmseg.utils import register_all_modules
    data_root = distilled.root / 'ade'
    _write_ade(data_root)
    cfg = _downstream_cfg(MMSEG_CFG, distilled.backbone, {
        'model.data_preprocessor.size': (64, 64),
        'model.decode_head.in_channels': TINY_WIDTHS,
        'model.decode_head.channels': 16,
        'model.auxiliary_head.in_channels': TINY_WIDTHS[2],
        'model.auxiliary_head.channels': 16,
    })
    for split in ('train_dataloader', 'val_dataloader'):
        cfg[split].dataset.data_root = str(data_root)
        cfg[split].dataset.data_prefix = dict(img_path='images/training',
                                              seg_map_path='annotations/training')
    train_pipeline = cfg.train_dataloader.dataset.pipeline
    _first(train_pipeline, 'RandomResize').scale = (128, 64)  # was (2048, 512)
    _first(train_pipeline, 'RandomCrop').crop_size = (64, 64)  # was (512, 512)
    _first(cfg.val_dataloader.dataset.pipeline, 'Resize').scale = (128, 64)

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.registry import DATASETS
        from mmseg.registry import MODELS as SEG_MODELS
        # The Runner turns SyncBN into BN when it runs without a process group; so does this.
        model = revert_sync_batchnorm(SEG_MODELS.build(cfg.model))
        assert type(model).__name__ == 'EncoderDecoder'
        assert type(model.backbone).__module__.startswith('mmpretrain')
        model.init_weights()
        _check_backbone_loaded(model, distilled)

        train_set = DATASETS.build(cfg.train_dataloader.dataset)
        val_set = DATASETS.build(cfg.val_dataloader.dataset)
        assert len(train_set) == len(val_set) == 2
        model.train()
        data = model.data_preprocessor(pseudo_collate([train_set[0], train_set[1]]), True)
        assert data['inputs'].shape == (2, 3, 64, 64)
        labels = data['data_samples'][0].gt_sem_seg.data
        assert labels.shape == (1, 64, 64)
        assert set(labels.unique().tolist()) <= {0, 1, 2, 255}  # reduce_zero_label: 0 -> 255
        losses = model(**data, mode='loss')
        loss, log_vars = model.parse_losses(losses)
        assert math.isfinite(log_vars['decode.loss_ce']) and math.isfinite(log_vars['aux.loss_ce'])
        assert torch.isfinite(loss)
        loss.backward()
        _check_backbone_grads(model)  # nothing frozen in the UperNet config

        model.eval()
        with torch.no_grad():
            (pred, ) = model.test_step(pseudo_collate([val_set[0]]))
    assert pred.ori_shape == (80, 96)
    assert pred.pred_sem_seg.data.shape == (1, 80, 96)
    assert pred.seg_logits.data.shape == (150, 80, 96)
    assert 0 <= int(pred.pred_sem_seg.data.min()) and int(pred.pred_sem_seg.data.max()) < 150
