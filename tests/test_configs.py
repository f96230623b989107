"""Every config parses; ScaleKD models build; downstream configs parse (and build with mmcv ops)."""
from __future__ import annotations

import copy
import glob
import os.path as osp

import pytest
from mmengine.config import Config  # noqa: E402

from mmscalekd.utils import register_all_modules  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ALL = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
             if '_base_' not in p and '__pycache__' not in p)
SCALEKD = sorted(glob.glob(osp.join(ROOT, 'configs', 'scalekd', '*.py')))
SSLD = sorted(glob.glob(osp.join(ROOT, 'configs', 'ssld', '*.py')))
KD = sorted(glob.glob(osp.join(ROOT, 'configs', 'kd', '*.py')))
DOWNSTREAM = sorted(glob.glob(osp.join(ROOT, 'configs', 'downstream', '*', '*.py')))
# Two cheap ones are built at full size (teacher included); the rest with a shrunk teacher.
FULL_SIZE = ('scalekd_swin-s_resnet50_8xb32_100e_in1k.py',
             'scalekd_swin-l_swin-t_32xb16_300e_in1k.py')

register_all_modules()


def _name(path: str) -> str:
    return osp.relpath(path, ROOT)


def _types(obj, found: list, inits: list | None = None) -> list:
    """Collect the ``type`` strings of a model dict; those under ``init_cfg`` (weight
    initialisers, not models) go to ``inits`` when given, else are skipped."""
    if isinstance(obj, dict):
        if isinstance(obj.get('type'), str):
            found.append(obj['type'])
        for k, v in obj.items():
            if k == 'init_cfg':
                if inits is not None:
                    _types(v, inits)
                continue
            _types(v, found, inits)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _types(v, found, inits)
    return found


def shrink_scalekd(model: dict) -> dict:
    """Return a copy of a ScaleKD distiller dict with a tiny teacher.

    The teacher (Swin-L/B/S or EVA-L, 50-300 M params) dominates build time. Its
    arch is replaced by a 2-block-per-stage dict of the same family; the connectors'
    widths follow it (derived by the distiller) and their ``num_heads`` is set to 2,
    which divides the new widths. Students keep their real size.
    """
    model = copy.deepcopy(model)
    teacher = model['teacher']
    backbone = teacher['model']['backbone']
    teacher['checkpoint'] = None
    teacher['allow_random_teacher'] = True
    if backbone['type'] == 'SwinTransformer':
        backbone['arch'] = dict(embed_dims=16, depths=[1, 1, 2, 1], num_heads=[1, 1, 2, 2])
        final = 128  # stage-4 width of that arch (its stage-3 width, the TPP space: 64)
    else:  # BEiTViT (EVA-L)
        backbone['arch'] = dict(embed_dims=32, num_layers=3, num_heads=2,
                                feedforward_channels=64)
        final = 32
    teacher['model']['head']['in_channels'] = final
    for stage in model['distill_stages']:
        stage['connector']['num_heads'] = 2
    return model


@pytest.mark.parametrize('path', ALL, ids=_name)
def test_config_parses(path):
    cfg = Config.fromfile(path)
    assert len(cfg.keys()) > 0
    if 'model' in cfg:  # fragments (e.g. configs/ssld/finetune_stage_lr_mult.py) have none
        assert isinstance(cfg.model, dict) and 'type' in cfg.model


@pytest.mark.parametrize('path', SCALEKD + KD + SSLD, ids=_name)
def test_model_types_resolve(path):
    from mmengine.registry import WEIGHT_INITIALIZERS

    from mmscalekd.registry import MODELS
    cfg = Config.fromfile(path)
    if 'model' not in cfg:
        pytest.skip('config fragment without a model')
    inits: list = []
    types = _types(cfg.model.to_dict(), [], inits)
    assert types, 'no type found'
    missing = [t for t in types if MODELS.get(t) is None]
    assert not missing, f'unresolved model types: {missing}'
    missing = [t for t in inits if WEIGHT_INITIALIZERS.get(t) is None]
    assert not missing, f'unresolved init_cfg types: {missing}'


def test_scalekd_config_set():
    names = {osp.basename(p) for p in SCALEKD}
    # 11 Table-3 pairs + traditional ResNet-50 (Swin-S/B/L) + traditional MobileNet-V1
    assert len(names) == 15
    assert 'scalekd_swin-l_resnet50_32xb64_300e_in1k.py' in names
    assert 'scalekd_beit-l14_vit-b14_32xb32_300e_in1k.py' in names


@pytest.mark.parametrize('path', SCALEKD, ids=_name)
def test_scalekd_heads_consistent(path):
    """Stages state choices only: s3 TPP, s4 queried by s3, no restated connector shapes
    (the derived shapes are checked in tests/test_models/test_derived_geometry.py)."""
    from mmscalekd.models.distillers.distill_stage import GEOMETRY_KEYS
    cfg = Config.fromfile(path)
    s3, s4 = cfg.model.distill_stages
    assert s3.tpp and s4.query_from == 's3' and not s4.get('tpp', False)
    for st in (s3, s4):
        assert not set(GEOMETRY_KEYS) & set(st.connector), st.connector
        # one scalar softmax_scale per connector (the official 2-lists held equal values)
        assert isinstance(st.connector.softmax_scale, float)
    assert cfg.model.teacher_train_mode is False


@pytest.mark.slow
@pytest.mark.parametrize('path', SCALEKD, ids=_name)
def test_scalekd_model_builds(path):
    import torch

    from mmscalekd.registry import MODELS
    torch.set_num_threads(1)
    cfg = Config.fromfile(path)
    if osp.basename(path) in FULL_SIZE:
        model_cfg = cfg.model.to_dict()
        model_cfg['teacher']['checkpoint'] = None
        model_cfg['teacher']['allow_random_teacher'] = True
    else:
        model_cfg = shrink_scalekd(cfg.model.to_dict())
    model = MODELS.build(model_cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(n.startswith('student.') for n in trainable)
    assert any('connectors' in n for n in trainable)
    assert not any(n.startswith('teacher.') for n in trainable)


@pytest.mark.parametrize('path', DOWNSTREAM, ids=_name)
def test_downstream_init_cfg(path):
    cfg = Config.fromfile(path)
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    assert cfg.model.backbone.type.startswith('mmpretrain.')


def _mmcv_ops() -> bool:
    try:
        import mmcv.ops  # noqa: F401
    except Exception:  # mmcv-lite has no compiled ops
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _mmcv_ops(), reason='needs compiled mmcv ops (RoIAlign, SyncBN heads)')
@pytest.mark.parametrize('path', DOWNSTREAM, ids=_name)
def test_downstream_model_builds(path):
    from mmengine.registry import DefaultScope, init_default_scope
    cfg = Config.fromfile(path)
    scope = cfg.default_scope
    init_default_scope(scope)
    try:
        if scope == 'mmdet':
            from mmdet.registry import MODELS
        else:
            from mmseg.registry import MODELS
        model_cfg = copy.deepcopy(cfg.model)  # a ConfigDict: mmdet reads train_cfg.rpn
        model_cfg.backbone.pop('init_cfg')  # no checkpoint download
        model = MODELS.build(model_cfg)
        assert type(model.backbone).__module__.startswith('mmpretrain')
    finally:
        DefaultScope._instance_dict.pop(scope, None)
        register_all_modules()
