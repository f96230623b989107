"""The teacher contract, for every family (mmpretrain and timm, tiny random models)."""
import pytest
import torch

from mmscalekd.models.teachers import BaseTeacher, TeacherTargets, TPPTeacher
from mmscalekd.registry import MODELS
from tests.test_models.test_teachers.cases import CASES, TARGET_ONLY, capture_stage_input


@pytest.fixture(scope='module', params=list(CASES))
def built(request):
    case = CASES[request.param]
    torch.manual_seed(0)
    return request.param, case, MODELS.build(case.cfg)


def test_builds_with_the_worked_out_geometry(built):
    name, case, teacher = built
    assert isinstance(teacher, TPPTeacher) and isinstance(teacher, BaseTeacher)
    assert teacher.input_size == (case.size, case.size)
    assert (teacher.tpp_dims, teacher.tpp_hw) == case.tpp
    assert (teacher.final_dims, teacher.final_hw) == case.final
    assert teacher.num_prefix_tokens == case.prefix
    assert teacher.num_classes == case.num_classes
    assert teacher.has_classifier == (case.num_classes > 0)
    summary = teacher.shape_summary()
    assert (summary['tpp_dims'], summary['tpp_hw']) == case.tpp
    assert (summary['final_dims'], summary['final_hw']) == case.final


def test_target_and_logit_shapes(built):
    _, case, teacher = built
    x = torch.randn(2, 3, case.size, case.size)
    out = teacher.forward_targets(x, with_logits=teacher.has_classifier)
    assert isinstance(out, TeacherTargets)
    assert tuple(out.feature.shape) == (2, case.final[0], *case.final[1])
    if case.num_classes:
        assert tuple(out.logits.shape) == (2, case.num_classes)
        features_only = teacher.forward_targets(x, with_logits=False)
        assert features_only.logits is None
        assert torch.equal(features_only.feature, out.feature)
    else:
        assert out.logits is None
        with pytest.raises(ValueError, match=r'has no classifier \(num_classes=0\).*'
                                             'with_logits=False'):
            teacher.forward_targets(x)


def test_last_stage_on_own_tokens_reproduces_the_target(built):
    """Fed the teacher's own stage-(n-1) tokens (and prefix state), TPP gives its target."""
    _, case, teacher = built
    x = torch.randn(2, 3, case.size, case.size)
    tokens, prefix, target = capture_stage_input(case, teacher, x)
    assert tuple(tokens.shape) == (2, case.tpp[1][0] * case.tpp[1][1], case.tpp[0])
    assert (prefix is None) == (case.prefix == 0)
    with torch.no_grad():
        z = teacher.forward_last_stage(tokens, prefix)
    assert z.dtype == torch.float32
    torch.testing.assert_close(z, target, atol=1e-5, rtol=0)


def test_last_stage_with_the_layer0_prefix_keeps_the_target_space(built):
    _, case, teacher = built
    tokens = torch.randn(2, case.tpp[1][0] * case.tpp[1][1], case.tpp[0])
    z = teacher.forward_last_stage(tokens)
    assert tuple(z.shape) == (2, case.final[0], *case.final[1])
    if not case.prefix:
        assert teacher.prefix_state(2) is None
    else:
        state = teacher.prefix_state(2)
        assert tuple(state.shape) == (2, case.prefix, case.tpp[0])
        torch.testing.assert_close(teacher.forward_last_stage(tokens, state), z)
    with pytest.raises(ValueError, match='expects tokens of shape'):
        teacher.forward_last_stage(torch.randn(2, tokens.shape[1] + 1, case.tpp[0]))
    bad_prefix = torch.randn(2, case.prefix + 1, case.tpp[0])
    with pytest.raises(ValueError, match='prefix'):
        teacher.forward_last_stage(tokens, bad_prefix)


def test_gradients_reach_the_inputs_and_no_teacher_parameter(built):
    _, case, teacher = built
    x = torch.randn(2, 3, case.size, case.size, requires_grad=True)
    teacher.forward_targets(x, with_logits=False).feature.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    tokens = torch.randn(2, case.tpp[1][0] * case.tpp[1][1], case.tpp[0], requires_grad=True)
    teacher.forward_last_stage(tokens).square().sum().backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    params = list(teacher.parameters())
    assert params and all(not p.requires_grad and p.grad is None for p in params)


@pytest.mark.parametrize('calls', [(), (True, ), (False, True), (True, False, True)])
def test_eval_mode_whatever_train_is_called_with(built, calls):
    _, _, teacher = built
    for mode in calls:
        teacher.train(mode)
    teacher.train()
    assert not teacher.training and not any(m.training for m in teacher.modules())


@pytest.mark.parametrize('name', list(TARGET_ONLY))
def test_target_only_family_is_not_a_tpp_teacher(name):
    cfg, size, (dims, hw) = TARGET_ONLY[name]
    teacher = MODELS.build(cfg)
    assert isinstance(teacher, BaseTeacher) and not isinstance(teacher, TPPTeacher)
    assert not hasattr(teacher, 'forward_last_stage') and not hasattr(teacher, 'tpp_dims')
    assert (teacher.final_dims, teacher.final_hw) == (dims, hw)
    x = torch.randn(2, 3, size, size, requires_grad=True)
    out = teacher.forward_targets(x)
    assert tuple(out.feature.shape) == (2, dims, *hw)
    out.feature.sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    teacher.train(True)
    assert not any(m.training for m in teacher.modules())


def test_train_mode_is_set_at_build_and_read_only():
    from tests import _builders as B
    quirk = MODELS.build(B.swin_teacher(train_mode=True))  # the official code's behaviour
    quirk.train()
    assert quirk.train_mode and all(m.training for m in quirk.modules())
    quirk.train(False)
    assert not any(m.training for m in quirk.modules())
    assert not any(p.requires_grad for p in quirk.parameters())
    with pytest.raises(AttributeError):
        quirk.train_mode = False  # pass it at build instead


@pytest.mark.parametrize('name', ['timm_eva02', 'timm_dinov2_reg4', 'mm_swin'])
def test_deepcopy_keeps_the_family_and_the_targets(name):
    """EMA hooks and model wrappers deep-copy the distiller, teacher included."""
    import copy
    case = CASES[name]
    teacher = MODELS.build(case.cfg)
    clone = copy.deepcopy(teacher)
    assert type(clone) is type(teacher) and clone.shape_summary() == teacher.shape_summary()
    x = torch.randn(1, 3, case.size, case.size)
    with torch.no_grad():
        assert torch.equal(clone.forward_targets(x, with_logits=False).feature,
                           teacher.forward_targets(x, with_logits=False).feature)
