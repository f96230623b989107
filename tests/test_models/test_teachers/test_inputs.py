"""The teacher's input convention, given at build: normalisation, channel order, size."""
import pytest
import torch

from mmscalekd.registry import MODELS
from tests import _builders as B
from tests.test_models.test_teachers.cases import CASES


def _const(values, size: int = 4) -> torch.Tensor:
    """``(1, C, size, size)`` with channel ``c`` equal to ``values[c]``."""
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1).expand(
        1, len(values), size, size).clone()


def test_renormalisation_by_values():
    teacher = MODELS.build(B.swin_teacher(mean=[0.0, 0.0, 0.0], std=[2.0, 2.0, 2.0],
                                          input_size=32, student_mean=[1.0, 1.0, 1.0],
                                          student_std=[4.0, 4.0, 4.0]))
    x = torch.full((1, 3, 32, 32), 0.5)  # raw = 0.5 * 4 + 1 = 3 -> teacher (3 - 0) / 2 = 1.5
    torch.testing.assert_close(teacher.prepare_inputs(x), torch.full((1, 3, 32, 32), 1.5))
    assert tuple(teacher.prepare_inputs(torch.zeros(1, 3, 64, 64)).shape) == (1, 3, 32, 32)
    assert teacher.final_hw == (1, 1) and teacher.tpp_hw == (2, 2)


def test_no_own_normalisation_passes_the_batch_unchanged():
    same = MODELS.build(B.swin_teacher(student_mean=[1.0], student_std=[4.0]))
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(same.prepare_inputs(x), x)
    # equal conventions on both sides: unchanged too (no rounding from a round trip)
    equal = MODELS.build(B.swin_teacher(mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0],
                                        student_mean=[1.0, 2.0, 3.0],
                                        student_std=[4.0, 5.0, 6.0]))
    assert torch.equal(equal.prepare_inputs(x), x)


def test_bgr_student_and_rgb_teacher_by_values():
    """ImageNet pixels (B, G, R) = (10, 20, 30) normalised by a BGR student (mean/std in BGR
    order) reach an RGB teacher as ((30, 20, 10) - mean_rgb) / std_rgb."""
    s_mean, s_std = [103.53, 116.28, 123.675], [57.375, 57.12, 58.395]  # BGR order
    t_mean, t_std = [122.0, 116.0, 104.0], [68.0, 66.0, 70.0]  # RGB order
    teacher = MODELS.build(B.swin_teacher(mean=t_mean, std=t_std, channel_order='rgb',
                                          student_mean=s_mean, student_std=s_std,
                                          student_channel_order='bgr', input_size=4))
    bgr = torch.tensor([10.0, 20.0, 30.0])
    student = _const(((bgr - torch.tensor(s_mean)) / torch.tensor(s_std)).tolist())
    expected = _const([(30 - 122) / 68, (20 - 116) / 66, (10 - 104) / 70])
    torch.testing.assert_close(teacher.prepare_inputs(student), expected)


def test_bgr_student_and_teacher_with_the_students_normalisation_flips_channels():
    teacher = MODELS.build(B.swin_teacher(channel_order='rgb', student_mean=[1.0, 2.0, 3.0],
                                          student_std=[1.0, 1.0, 1.0],
                                          student_channel_order='bgr'))
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(teacher.prepare_inputs(x), x.flip(1))
    unknown = MODELS.build(B.swin_teacher(student_channel_order='bgr'))  # teacher: student's
    assert torch.equal(unknown.prepare_inputs(x), x)


def test_timm_teacher_defaults_to_its_pretrained_cfg_in_rgb():
    """A BGR student beside a timm teacher: the teacher gets its own RGB normalisation, and
    its targets equal the timm model's own output on the RGB-normalised image."""
    cfg = dict(CASES['timm_clip'].cfg, student_mean=[0.0, 0.0, 0.0],
               student_std=[1.0, 1.0, 1.0], student_channel_order='bgr')  # raw BGR pixels
    torch.manual_seed(0)
    teacher = MODELS.build(cfg)
    clip_mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]) * 255
    clip_std = torch.tensor([0.26862954, 0.26130258, 0.27577711]) * 255
    torch.testing.assert_close(teacher.teacher_mean.flatten(), clip_mean)
    torch.testing.assert_close(teacher.teacher_std.flatten(), clip_std)
    rgb = torch.rand(2, 3, 56, 56) * 255
    with torch.no_grad():
        got = teacher.forward_targets(rgb.flip(1)).logits
        want = teacher.model((rgb - clip_mean.view(1, 3, 1, 1)) / clip_std.view(1, 3, 1, 1))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_normalisation_buffers_follow_the_module_and_stay_out_of_the_state_dict():
    teacher = MODELS.build(B.swin_teacher(mean=[1.0, 2.0, 3.0], std=[1.0, 1.0, 1.0],
                                          student_mean=[0.0], student_std=[1.0]))
    assert not any('mean' in k or 'std' in k for k in teacher.state_dict())
    teacher.double()
    assert teacher.teacher_mean.dtype == torch.float64


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(student_mean=[1.0, 2.0, 3.0]), ValueError, 'give both student_mean and student_std'),
    (dict(student_mean=[1.0, 2.0], student_std=[1.0, 1.0]), ValueError, '1 or 3 values'),
    (dict(student_mean=[0.0], student_std=[0.0]), ValueError, 'student_std must be positive'),
    (dict(student_channel_order='BGRA'), ValueError, "student_channel_order must be 'rgb'"),
    (dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], student_mean=[123.675],
          student_std=[58.395]), ValueError, r'looks like 0-1 units.*multiply by 255'),
    (dict(mean='imagenet', std=[1.0]), TypeError, 'mean must be a sequence'),
])
def test_bad_input_conventions(kwargs, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(B.swin_teacher(**kwargs))
