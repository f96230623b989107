"""Derived connector geometry on the 15 shipped ScaleKD pairs: the distiller built from a config
that states only choices has exactly the parameters of the same distiller with the shapes written
out, and the derived shapes equal a hand-written table.

Students are built at full size from the configs; teachers at full width and grid with one
block per stage (Swin) or three blocks (EVA-L), random weights, ``checkpoint=None``.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Dict, Tuple

import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.backbones import BEiTViT, SwinTransformer

from mmscalekd.models.distillers import ScaleKDDistiller
from mmscalekd.models.distillers.distill_stage import GEOMETRY_KEYS
from mmscalekd.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

Row = Tuple[int, Tuple[int, int], int, Tuple[int, int]]
# (in_channels, student_hw, embed_dims, query_hw) of s3 and s4 at 224 px, as the configs wrote
# them before the shapes were derived (`git show 39cc239:configs/scalekd/<name>`). s3 maps into
# the teacher's TPP input (Swin: stage-3 width and 14x14 grid; EVA-L: 1024 x 16x16), s4 into its
# final map (Swin: stage-4 width, 7x7; EVA-L: 1024 x 16x16).
EXPLICIT: Dict[str, Tuple[Row, Row]] = {
    'scalekd_beit-l14_mixer-b14_32xb24_300e_in1k.py':
        ((768, (16, 16), 1024, (16, 16)), (768, (16, 16), 1024, (16, 16))),
    'scalekd_beit-l14_resnet50_32xb64_300e_in1k.py':
        ((1024, (14, 14), 1024, (16, 16)), (2048, (7, 7), 1024, (16, 16))),
    'scalekd_beit-l14_vit-b14_32xb32_300e_in1k.py':
        ((768, (16, 16), 1024, (16, 16)), (768, (16, 16), 1024, (16, 16))),
    'scalekd_swin-b_resnet50_8xb32_100e_in1k.py':
        ((1024, (14, 14), 512, (14, 14)), (2048, (7, 7), 1024, (7, 7))),
    'scalekd_swin-l_convnext-t_32xb32_300e_in1k.py':
        ((384, (14, 14), 768, (14, 14)), (768, (7, 7), 1536, (7, 7))),
    'scalekd_swin-l_mixer-b16_32xb48_300e_in1k.py':
        ((768, (14, 14), 768, (14, 14)), (768, (14, 14), 1536, (7, 7))),
    'scalekd_swin-l_mixer-s16_32xb24_300e_in1k.py':
        ((512, (14, 14), 768, (14, 14)), (512, (14, 14), 1536, (7, 7))),
    'scalekd_swin-l_mobilenet-v1_32xb64_300e_in1k.py':
        ((512, (14, 14), 768, (14, 14)), (1024, (7, 7), 1536, (7, 7))),
    'scalekd_swin-l_mobilenet-v1_8xb32_100e_in1k.py':
        ((512, (14, 14), 768, (14, 14)), (1024, (7, 7), 1536, (7, 7))),
    'scalekd_swin-l_resnet50_32xb64_300e_in1k.py':
        ((1024, (14, 14), 768, (14, 14)), (2048, (7, 7), 1536, (7, 7))),
    'scalekd_swin-l_resnet50_8xb32_100e_in1k.py':
        ((1024, (14, 14), 768, (14, 14)), (2048, (7, 7), 1536, (7, 7))),
    'scalekd_swin-l_swin-t_32xb16_300e_in1k.py':
        ((384, (14, 14), 768, (14, 14)), (768, (7, 7), 1536, (7, 7))),
    'scalekd_swin-l_vit-b16_32xb16_300e_in1k.py':
        ((768, (14, 14), 768, (14, 14)), (768, (14, 14), 1536, (7, 7))),
    'scalekd_swin-l_vit-s16_32xb32_300e_in1k.py':
        ((384, (14, 14), 768, (14, 14)), (384, (14, 14), 1536, (7, 7))),
    'scalekd_swin-s_resnet50_8xb32_100e_in1k.py':
        ((1024, (14, 14), 384, (14, 14)), (2048, (7, 7), 768, (7, 7))),
}


def test_the_table_covers_every_shipped_scalekd_config():
    import glob
    shipped = {osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs/scalekd/*.py'))}
    assert shipped == set(EXPLICIT)


def _shallow_teacher(teacher: dict) -> dict:
    """The config's teacher at full width and grid with fewer blocks, random weights."""
    teacher = copy.deepcopy(teacher)
    teacher['checkpoint'] = None
    teacher['allow_random_teacher'] = True
    backbone = teacher['model']['backbone']
    if backbone['type'] == 'SwinTransformer':
        arch = SwinTransformer.arch_zoo[backbone['arch']]
        backbone['arch'] = dict(embed_dims=arch['embed_dims'], depths=[1, 1, 1, 1],
                                num_heads=arch['num_heads'])
    else:
        assert backbone['type'] == 'BEiTViT', backbone['type']
        arch = BEiTViT.arch_zoo[backbone['arch']]
        backbone['arch'] = dict(arch, num_layers=3)  # TPP re-runs the last two blocks
    return teacher


def _shapes(model: torch.nn.Module) -> Dict[str, Tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


@pytest.mark.slow  # about 65 s for the 15 pairs on one CPU thread
@pytest.mark.parametrize('name', sorted(EXPLICIT))
def test_derived_geometry_builds_the_explicit_distiller(name):
    torch.manual_seed(0)
    model_cfg = Config.fromfile(osp.join(ROOT, 'configs/scalekd', name)).model.to_dict()
    stages = model_cfg.pop('distill_stages')
    assert all(not set(GEOMETRY_KEYS) & set(s['connector']) for s in stages)
    kwargs = {k: v for k, v in model_cfg.items() if k not in ('type', 'student', 'teacher')}
    student = MODELS.build(model_cfg['student'])
    # built once for both distillers, with the default data preprocessor's input convention
    teacher = MODELS.build(dict(_shallow_teacher(model_cfg['teacher']), student_mean=[0.0],
                                student_std=[1.0], student_channel_order='bgr'))
    derived = ScaleKDDistiller(student=student, teacher=teacher, distill_stages=stages, **kwargs)

    explicit_stages = copy.deepcopy(stages)
    for stage, (c_s, hw_s, c_t, hw_q) in zip(explicit_stages, EXPLICIT[name]):
        stage['connector'].update(in_channels=c_s, student_hw=hw_s, embed_dims=c_t,
                                  query_hw=hw_q,
                                  learnable_query=stage.get('query_from') is None)
    explicit = ScaleKDDistiller(student=student, teacher=teacher,
                                distill_stages=explicit_stages, **kwargs)

    for stage, row in zip(derived.stages, EXPLICIT[name]):
        g = stage.geometry
        assert (g.in_channels, g.student_hw, g.embed_dims, g.query_hw) == row, stage.name
        assert g.learnable_query is (stage.query_from is None)
        assert g.given == ()
    assert all(s.geometry.given == GEOMETRY_KEYS for s in explicit.stages)
    assert _shapes(derived) == _shapes(explicit)
    # s3 has its own queries, s4 takes the s3 TPP outputs: no query table
    keys = _shapes(derived)
    assert keys['connectors.s3_spatial.query'] == (EXPLICIT[name][0][3][0]
                                                  * EXPLICIT[name][0][3][1],
                                                  EXPLICIT[name][0][2])
    assert not any(k.startswith('connectors.s4_') and k.endswith('.query') for k in keys)
