"""Distill stages: parsing into frozen records, derived connector geometry and its checks, token
and non-square student taps, what the distiller reports, per-stage runtime errors and the
label-free warnings."""
from __future__ import annotations

import copy
import dataclasses
import pickle
import re
import warnings
from typing import List

import pytest
import torch
from torch import nn

from mmscalekd.models.distillers import DistillStage, FrozenConfig, ScaleKDDistiller
from mmscalekd.models.distillers.distill_stage import GEOMETRY_KEYS, derive_geometry, parse_stages
from mmscalekd.registry import MODELS
from tests import _builders as B

# Tiny Swin teacher at 64 px: TPP input 64 @ 4x4, final map 128 @ 2x2. ResNet-18 layout with 8
# base channels: layer3 32 @ 4x4 and layer4 64 @ 2x2 at 64 px (/16 and /32).
RESNET = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(2, 3))


def choice_stages(alpha=(0.08, 0.06)) -> List[dict]:
    """The two ScaleKD stages in the derived format: choices only."""
    conn = dict(type='CrossAttentionProjector', num_heads=2, softmax_scale=5.0)
    return [
        dict(name='s3', student_index=0, tpp=True, connector=dict(conn),
             loss=dict(type='DualViewMimicLoss', alpha=alpha)),
        dict(name='s4', student_index=1, query_from='s3', connector=dict(conn),
             loss=dict(type='DualViewMimicLoss', alpha=alpha)),
    ]


def build(stages=None, student=None, **kwargs) -> ScaleKDDistiller:
    return MODELS.build(B.distiller(student or B.classifier(RESNET, 64), B.swin_teacher(),
                                    choice_stages() if stages is None else stages, **kwargs))


# ------------------------------------------------------------------ derivation
def test_choices_only_stages_derive_the_connector_shapes():
    model = build()
    s3, s4 = model.stages
    assert isinstance(s3, DistillStage) and s3.views == ('spatial', 'freq')
    assert dataclasses.astuple(s3.geometry)[:8] == (
        (32, 4, 4), (64, 64), 'tpp', 32, (4, 4), 64, (4, 4), True)
    assert dataclasses.astuple(s4.geometry)[:8] == (
        (64, 2, 2), (64, 64), 'final', 64, (2, 2), 128, (2, 2), False)
    conn = model.connectors['s4_freq']
    assert (conn.in_channels, conn.student_hw, conn.embed_dims, conn.query_hw,
            conn.learnable_query) == (64, (2, 2), 128, (2, 2), False)
    assert conn.query is None and model.connectors['s3_spatial'].query.shape == (16, 64)
    # the built config = the stated choices + the derived shapes
    assert s3.connector_config() == dict(
        type='CrossAttentionProjector', num_heads=2, softmax_scale=5.0, in_channels=32,
        student_hw=(4, 4), embed_dims=64, query_hw=(4, 4), learnable_query=True)


def test_derived_and_explicit_stages_build_the_same_parameters():
    explicit = B.stages((32, (4, 4)), (64, (2, 2)), (64, (4, 4)), (128, (2, 2)))
    a, b = build(), build(explicit)
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in (a, b)]
    assert shapes[0] == shapes[1]
    assert [s.geometry.given for s in a.stages] == [(), ()]
    assert b.stages[0].geometry.given == ('in_channels', 'student_hw', 'embed_dims', 'query_hw')
    assert b.stages[1].geometry.given == GEOMETRY_KEYS
    assert [s.geometry for s in a.stages] == [
        dataclasses.replace(s.geometry, given=()) for s in b.stages]


@pytest.mark.parametrize('stated', [
    dict(student_hw=4), dict(student_hw=[4, 4]), dict(query_hw=(4, 4), embed_dims=64),
    dict(learnable_query=True), dict(in_channels=32)])
def test_stated_values_equal_to_the_derived_ones_are_accepted(stated):
    stages = choice_stages()
    stages[0]['connector'].update(stated)
    model = build(stages)
    assert model.stages[0].geometry.given == tuple(k for k in GEOMETRY_KEYS if k in stated)
    assert model.connectors['s3_spatial'].student_hw == (4, 4)


# (stage index, key, given value, derived value as printed, where it is derived from)
MISMATCHES = [
    (0, 'in_channels', 48, '32', r'the student output 0 of shape \(32, 4, 4\) at input size '
                                 r'\(64, 64\)'),
    (1, 'student_hw', (4, 4), r'\(2, 2\)', r'the student output 1 of shape \(64, 2, 2\)'),
    (0, 'embed_dims', 128, '64', r"the teacher's TPP input \(tpp_dims, tpp_hw\) = 64, \(4, 4\)"),
    (0, 'query_hw', (2, 2), r'\(4, 4\)', r"the teacher's TPP input \(tpp_dims, tpp_hw\) = 64, "
                                          r'\(4, 4\)'),
    (1, 'embed_dims', 64, '128', r"the teacher's final map \(final_dims, final_hw\) = 128, "
                                 r'\(2, 2\)'),
    (1, 'query_hw', 4, r'\(2, 2\)', r"the teacher's final map \(final_dims, final_hw\) = 128, "
                                  r'\(2, 2\)'),
    (1, 'learnable_query', True, 'False', r"query_from='s3' \(queries come from that stage\)"),
    (0, 'learnable_query', False, 'True', r'query_from=None \(no stage supplies queries\)'),
    (0, 'learnable_query', 1, 'True', 'query_from=None'),  # a bool is required, not 1
]


@pytest.mark.parametrize('index, key, given, derived, source', MISMATCHES,
                         ids=[f's{m[0] + 3}-{m[1]}-{m[2]}' for m in MISMATCHES])
def test_a_stated_value_that_differs_names_stage_key_derived_and_given(index, key, given,
                                                                       derived, source):
    stages = choice_stages()
    stages[index]['connector'][key] = given
    name = stages[index]['name']
    with pytest.raises(ValueError) as info:
        build(stages)
    message = str(info.value)
    assert re.search(rf"^stage '{name}': connector {key}={re.escape(repr(given))} is given, "
                     rf'but {key}={derived} is derived from {source}', message), message
    assert f"Drop '{key}' from the stage (it is derived)" in message


def test_derive_geometry_on_a_non_square_teacher_grid():
    stage = parse_stages(choice_stages())[1]
    g = derive_geometry(stage, (64, 6, 2), (96, 32), 48, (3, 5))
    assert (g.in_channels, g.student_hw, g.embed_dims, g.query_hw, g.learnable_query,
            g.teacher_space) == (64, (6, 2), 48, (3, 5), False, 'final')
    stated = dataclasses.replace(stage, connector=FrozenConfig(dict(stage.connector,
                                                                    query_hw=(5, 3))))
    with pytest.raises(ValueError, match=r'query_hw=\(5, 3\) is given, but query_hw=\(3, 5\)'):
        derive_geometry(stated, (64, 6, 2), (96, 32), 48, (3, 5))


# ------------------------------------------------------------- student taps
class _TokenTaps(nn.Module):
    """A backbone whose chosen outputs are tokens ``(B, H*W, C)`` (raster order), optionally
    with a leading class token, like a ViT with ``out_type='raw'``."""

    def __init__(self, backbone: nn.Module, token_outputs=(0, ), cls_token: bool = False):
        super().__init__()
        self.backbone, self.token_outputs, self.cls_token = backbone, token_outputs, cls_token

    def forward(self, x):
        outs = []
        for i, f in enumerate(self.backbone(x)):
            if i in self.token_outputs:
                f = f.flatten(2).transpose(1, 2)
                if self.cls_token:
                    f = torch.cat([f.mean(1, keepdim=True), f], dim=1)
            outs.append(f)
        return tuple(outs)


class _LastMapPool(nn.Module):
    def forward(self, feats):
        return (feats[-1].mean((2, 3)), )


def token_student(**kwargs) -> nn.Module:
    student = MODELS.build(B.classifier(RESNET, 64))
    student.backbone = _TokenTaps(student.backbone, **kwargs)
    student.neck = _LastMapPool()
    return student


def _step(model: ScaleKDDistiller, x: torch.Tensor, samples: list) -> dict:
    losses = model.loss(x, samples)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert [n for n, ok in B.grads(model).items() if not ok] == []
    return losses


def test_square_token_tap_gets_a_square_grid_and_trains():
    model = build(student=token_student())
    g = model.stages[0].geometry
    assert g.student_shape == (16, 32) and (g.in_channels, g.student_hw) == (32, (4, 4))
    assert 'tokens (16, 32)' in model.describe_stages()
    losses = _step(model, *B.batch(64))
    assert len(losses) == 6


def test_token_tap_with_a_class_token_is_not_square_and_says_what_to_do():
    with pytest.raises(ValueError) as info:
        build(student=token_student(cls_token=True))
    message = str(info.value)
    for part in ("stage 's3'", 'tokens (N=17, C=32) without a grid', 'N is not a square',
                 'student_hw=(H, W) with H*W = 17', 'class or register token'):
        assert part in message, message


def test_non_square_token_tap_needs_student_hw_and_then_trains():
    # 64 x 32 input: layer3 is 4 x 2 -> 8 tokens, not a square
    with pytest.raises(ValueError, match=r"'s3'.*tokens \(N=8, C=32\) without a grid.*"
                                         r'student_hw=\(H, W\) with H\*W = 8'):
        build(student=token_student(), input_size=(64, 32))
    stages = choice_stages()
    stages[0]['connector']['student_hw'] = (3, 3)
    with pytest.raises(ValueError, match=r"student_hw' is given as \(3, 3\), whose H\*W is not "
                                         r'N=8'):
        build(stages, student=token_student(), input_size=(64, 32))
    stages[0]['connector']['student_hw'] = (4, 2)
    model = build(stages, student=token_student(), input_size=(64, 32))
    g = model.stages[0].geometry
    assert (g.student_shape, g.student_hw, g.given) == ((8, 32), (4, 2), ('student_hw', ))
    x, samples = B.batch(64)
    _step(model, x[..., :32].contiguous(), samples)


def test_non_square_student_maps_are_derived_from_the_dry_run_size():
    model = build(input_size=(64, 32))
    assert [s.geometry.student_hw for s in model.stages] == [(4, 2), (2, 1)]
    assert model.connectors['s3_freq'].pos_embed.shape == (1, 32, 4, 2)
    x, samples = B.batch(64)
    _step(model, x[..., :32].contiguous(), samples)  # the teacher resizes to its 64 x 64


def test_a_pooled_student_output_is_refused():
    student = MODELS.build(B.classifier(RESNET, 64))
    student.backbone = _TokenTaps(student.backbone, token_outputs=())
    backbone = student.backbone.backbone
    student.backbone.forward = lambda x: (backbone(x)[0].mean((2, 3)), backbone(x)[1])
    with pytest.raises(ValueError, match=r"'s3': the student output 0 has shape \(32,\) at "
                                         r'input size \(64, 64\); expected a \(C, H, W\) map'):
        build(student=student)


# ------------------------------------------------------------------ records
def test_a_stage_record_is_immutable():
    cfg = choice_stages()
    model = build(cfg)
    stage = model.stages[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage.name = 'other'
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage.geometry.in_channels = 8
    with pytest.raises(TypeError):
        stage.connector['num_heads'] = 4
    with pytest.raises(AttributeError, match='read-only'):
        stage.loss._data = {}
    assert isinstance(stage.loss['alpha'], tuple)
    # the config the user passed stays theirs: mutating it (or a thawed copy) changes nothing
    cfg[0]['connector']['num_heads'] = 4
    thawed = stage.connector_config()
    thawed['num_heads'] = 8
    assert stage.connector['num_heads'] == 2 and 'in_channels' not in stage.connector
    assert isinstance(model.stages, tuple)
    assert hash(stage) == hash(copy.deepcopy(stage)) and stage == pickle.loads(pickle.dumps(stage))


def test_distiller_with_records_deep_copies_like_ema_does():
    model = build()
    clone = copy.deepcopy(model)  # mmengine's ExponentialMovingAverage deep-copies the model
    assert clone.stages == model.stages and clone.stages[1].geometry.query_hw == (2, 2)


def test_frozen_config_thaws_lists_back_to_lists():
    frozen = FrozenConfig(dict(type='X', init_cfg=[dict(type='Constant', val=1)], hw=(2, 3),
                               nested=dict(alpha=[0.1, 0.2])))
    plain = frozen.to_dict()
    assert plain == dict(type='X', init_cfg=[dict(type='Constant', val=1)], hw=(2, 3),
                         nested=dict(alpha=[0.1, 0.2]))
    assert type(plain['init_cfg']) is list and type(plain['init_cfg'][0]) is dict
    with pytest.raises(TypeError):
        frozen['nested']['alpha'] = 1


@pytest.mark.parametrize('stages, error, match', [
    ('s3', TypeError, 'distill_stages must be a list of dicts'),
    ([['s3']], TypeError, r"each distill stage must be a dict, got \['s3'\]"),
    ([dict(choice_stages()[0], teacher_index=3)], ValueError,
     r"stage 's3' has unknown keys \['teacher_index'\]; accepted: \['connector'"),
    ([{k: v for k, v in choice_stages()[0].items() if k != 'loss'}], ValueError,
     r"stage 's3' misses 'loss'; a stage needs \['name', 'student_index', 'connector', 'loss'\]"),
    ([dict(choice_stages()[0], name='s-3')], ValueError, r"stage name 's-3' must be a unique "
                                                         'identifier'),
    ([choice_stages()[0], dict(choice_stages()[0], tpp=False)], ValueError,
     r"stage name 's3' must be a unique identifier.*earlier stages: \['s3'\]"),
    ([dict(choice_stages()[0], student_index=True)], TypeError,
     "'s3': student_index must be an int"),
    ([dict(choice_stages()[0], student_index='0')], TypeError,
     "'s3': student_index must be an int"),
    ([dict(choice_stages()[0], tpp='yes')], TypeError, "'s3': tpp must be True or False, got "
                                                       "'yes'"),
    ([choice_stages()[0], dict(choice_stages()[1], query_from=3)], TypeError,
     "'s4': query_from must be the name of an earlier stage or None, got 3"),
    ([choice_stages()[0], dict(choice_stages()[1], tpp=True)], ValueError,
     r"'s4': tpp=True and query_from='s3' cannot be combined"),
    ([choice_stages()[1]], ValueError, r"'s4': query_from='s3' names no earlier stage; earlier "
                                       r'stages: \[\]'),
    ([dict(choice_stages()[0], tpp=False), choice_stages()[1]], ValueError,
     r"'s4': query_from='s3' names a stage without tpp=True"),
    ([dict(choice_stages()[0], connector='CrossAttentionProjector')], TypeError,
     "'s3': connector must be a config dict with a type"),
    ([dict(choice_stages()[0], loss=dict(alpha=(1, 1)))], TypeError,
     "'s3': loss must be a config dict with a type"),
])
def test_stage_configs_are_validated_when_parsed(stages, error, match):
    with pytest.raises(error, match=match):
        parse_stages(stages)


def test_stage_errors_that_need_the_built_parts():
    with pytest.raises(ValueError, match=r"'s3': student_index=2 is out of range.*2 output"):
        build([dict(choice_stages()[0], student_index=2)])
    stages = choice_stages()
    stages[1]['loss']['alpha'] = (0.08, 0.0)
    stages[0]['loss']['alpha'] = (0.0, 0.06)
    with pytest.raises(ValueError, match=r"'s4': view\(s\) \['spatial'\] need queries from "
                                         r"stage 's3', which has no such view"):
        build(stages)


# ------------------------------------------------------------------ reporting
def test_describe_stages_lists_what_was_derived_and_the_build_logs_it(records):
    model = build()
    text = model.describe_stages()
    assert text.splitlines() == [
        'ScaleKDDistiller: 2 distill stage(s); student dry run at 64x64; teacher '
        'MMPretrainSwinTeacher at 64x64 (TPP input 64 x (4, 4), final map 128 x (2, 2)); '
        'derived connector geometry:',
        '  s3: student output 0 (32, 4, 4) -> CrossAttentionProjector(in_channels=32, '
        'student_hw=(4, 4), embed_dims=64, query_hw=(4, 4), learnable_query=True) -> teacher '
        "TPP input 64 x (4, 4) -> teacher's last stage; views spatial, freq",
        '  s4: student output 1 (64, 2, 2) -> CrossAttentionProjector(in_channels=64, '
        'student_hw=(2, 2), embed_dims=128, query_hw=(2, 2), learnable_query=False, queries '
        "from 's3') -> teacher final map 128 x (2, 2); views spatial, freq"]
    assert text in records.messages
    stated = build(B.stages((32, (4, 4)), (64, (2, 2)), (64, (4, 4)), (128, (2, 2))))
    assert stated.describe_stages().splitlines()[2].endswith(
        '; stated and checked: in_channels, student_hw, embed_dims, query_hw, learnable_query')


# ------------------------------------------------------------ runtime errors
def test_a_shape_error_inside_a_stage_names_the_stage_and_shapes():
    model = build()  # built for 64 x 64 student inputs
    x, samples = B.batch(96)  # layer3 is 6 x 6 now; the teacher resizes to its 64 x 64
    with pytest.raises(ValueError) as info:
        model.loss(x, samples)
    message = str(info.value)
    for part in ("ScaleKDDistiller: stage 's3' failed", 'student output 0 of shape '
                 '(2, 32, 6, 6)', 'connector built for (32, 4, 4) (student dry run at (64, 64))',
                 'teacher target (2, 128, 2, 2)', 'ValueError: CrossAttentionProjector expected',
                 "set the distiller's input_size to the training resolution"):
        assert part in message, message
    assert isinstance(info.value.__cause__, ValueError)  # the original error is kept
    assert 'CrossAttentionProjector expected' in str(info.value.__cause__)


def test_an_error_in_a_query_stage_shows_the_query_shapes(monkeypatch):
    model = build()
    loss = model.distill_losses['s4']

    def broken(*args):
        raise RuntimeError('shape mismatch inside the loss')

    monkeypatch.setattr(loss, 'forward', broken)
    with pytest.raises(RuntimeError) as info:
        model.loss(*B.batch(64))
    message = str(info.value)
    assert "stage 's4' failed" in message and "queries from 's3' {'spatial': (2, 128, 2, 2), "\
        "'freq': (2, 128, 2, 2)}" in message
    assert 'RuntimeError: shape mismatch inside the loss' in message
    assert 'input_size' not in message  # the tap matched the dry run: no resolution hint
    assert str(info.value.__cause__) == 'shape mismatch inside the loss'


def test_out_of_memory_passes_through_unchanged(monkeypatch):
    model = build()
    oom = getattr(torch, 'OutOfMemoryError', torch.cuda.OutOfMemoryError)

    def no_memory(tokens):
        raise oom('CUDA out of memory')

    monkeypatch.setattr(model.teacher, 'forward_last_stage', no_memory)
    with pytest.raises(oom, match='^CUDA out of memory$'):
        model.loss(*B.batch(64))


# ------------------------------------------------------------ label_free warnings
@pytest.mark.parametrize('weight, warns', [(1.0, True), (0.25, True), (0.5, False),
                                           (0.0, False), (None, False)])
def test_label_free_with_a_stated_label_loss_weight_warns_at_build(weight, warns):
    kwargs = dict(label_free=True)
    cfg = B.distiller(B.classifier(RESNET, 64), B.swin_teacher(), choice_stages(), **kwargs)
    cfg.pop('label_loss_weight')
    if weight is not None:
        cfg['label_loss_weight'] = weight
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = MODELS.build(cfg)
    found = [str(w.message) for w in caught if 'label_loss_weight' in str(w.message)]
    if warns:
        assert found == [f'label_free=True: there is no label term, so label_loss_weight='
                         f'{weight!r} has no effect. Set label_free=False to train on the '
                         'labels with that weight (partial_labels=True for batches that mix '
                         'labeled and unlabeled samples), or drop label_loss_weight.']
    else:
        assert found == []
    assert model.label_loss_weight == (0.5 if weight is None else weight)


def test_a_stated_label_loss_weight_without_label_free_is_silent():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = build(label_loss_weight=1.0)
    assert not [w for w in caught if 'label_loss_weight' in str(w.message)]
    assert model.label_loss_weight == 1.0


@pytest.mark.parametrize('size', [0, '224', (64, ), (64, -1), True])
def test_input_size_is_validated(size):
    with pytest.raises(ValueError, match=rf'input_size must be a positive int or a pair \(H, W\) '
                                         rf'of positive ints, got {re.escape(repr(size))}'):
        build(input_size=size)
