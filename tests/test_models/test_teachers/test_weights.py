"""A teacher must have weights: checkpoints, timm pretrained weights, clear failures."""
import warnings

import pytest
import torch

from mmscalekd.models.teachers import RandomTeacherWarning, TeacherDownloadError
from mmscalekd.registry import MODELS
from tests import _builders as B
from tests.test_models.test_teachers.cases import CASES

TIMM_VIT = CASES['timm_vit'].cfg


def _no_random(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if k != 'allow_random_teacher'}


@pytest.mark.parametrize('name', ['mm_swin', 'mm_eva_beit', 'mm_convnext', 'timm_vit',
                                  'timm_eva02', 'timm_dinov2_reg4'])
def test_a_teacher_without_weights_is_an_error_that_says_what_to_set(name):
    with pytest.raises(ValueError, match=r"has no weights .*checkpoint='<local .pth/"
                                         r'.safetensors or URL>'
                                         r'.*--cfg-options model.teacher.checkpoint='
                                         r'.*pretrained=True for a TimmTeacher'
                                         r'.*allow_random_teacher=True'):
        MODELS.build(_no_random(CASES[name].cfg))


def test_allow_random_teacher_warns():
    with pytest.warns(RandomTeacherWarning, match=r"TimmTeacher\('vit_tiny_patch16_224'\): "
                                                  'random weights'):
        teacher = MODELS.build(TIMM_VIT)
    assert teacher.weights_source is None
    with pytest.raises(TypeError, match='allow_random_teacher must be a bool'):
        MODELS.build(dict(TIMM_VIT, allow_random_teacher='yes'))


def test_checkpoint_round_trip_missing_and_mismatch(tmp_path):
    src = MODELS.build(B.swin_teacher())
    path = tmp_path / 'swin.pth'
    torch.save({'state_dict': src.model.state_dict()}, path)
    torch.manual_seed(123)
    with warnings.catch_warnings():
        warnings.simplefilter('error', RandomTeacherWarning)  # weights given: no warning
        loaded = MODELS.build(B.swin_teacher(checkpoint=str(path)))
    assert loaded.weights_source == str(path)
    for (k, a), b in zip(src.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), k
    loaded.init_weights()  # must not overwrite the loaded weights
    assert torch.equal(loaded.model.head.fc.weight, src.model.head.fc.weight)

    with pytest.raises(FileNotFoundError, match="nope.pth' does not exist"):
        MODELS.build(B.swin_teacher(checkpoint=str(tmp_path / 'nope.pth')))

    other = MODELS.build(CASES['mm_convnext'].cfg)
    bad = tmp_path / 'convnext.pth'
    torch.save(other.model.state_dict(), bad)
    with pytest.raises(RuntimeError, match=r'does not match.*missing key.*backbone\.stages'):
        MODELS.build(B.swin_teacher(checkpoint=str(bad)))


def test_timm_checkpoint_as_safetensors(tmp_path):
    from safetensors.torch import save_file
    src = MODELS.build(TIMM_VIT)
    path = tmp_path / 'model.safetensors'
    save_file({k: v.contiguous() for k, v in src.model.state_dict().items()}, str(path))
    torch.manual_seed(7)
    loaded = MODELS.build(dict(_no_random(TIMM_VIT), checkpoint=str(path)))
    for k, v in src.model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k]), k
    loaded.init_weights()
    assert torch.equal(loaded.model.head.weight, src.model.head.weight)


def test_timm_pretrained_from_a_local_file_survives_init_weights(tmp_path):
    """``pretrained=True`` with timm's ``pretrained_cfg_overlay=dict(file=...)``: the offline
    way to load hub weights; the runner's ``init_weights()`` must not re-initialise them."""
    src = MODELS.build(TIMM_VIT)
    path = tmp_path / 'vit.pth'
    torch.save(src.model.state_dict(), path)
    cfg = _no_random(TIMM_VIT)
    cfg['model_kwargs'] = dict(cfg['model_kwargs'], pretrained_cfg_overlay=dict(
        file=str(path), num_classes=10))
    torch.manual_seed(7)
    teacher = MODELS.build(dict(cfg, pretrained=True))
    assert 'timm pretrained weights' in teacher.weights_source
    teacher.init_weights()
    for k, v in src.model.state_dict().items():
        assert torch.equal(v, teacher.model.state_dict()[k]), k


def test_init_cfg_pretrained_counts_as_weights():
    cfg = B.swin_teacher()
    cfg.pop('allow_random_teacher')
    cfg['model']['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint='swin-l.pth')
    teacher = MODELS.build(cfg)  # loaded by init_weights() (the runner calls it)
    assert teacher.weights_source == 'init_cfg Pretrained swin-l.pth'


def test_default_url_offline_says_which_url_and_how_to_pass_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))  # no cached copy
    url = 'http://127.0.0.1:9/swin_large_patch4_window7_224_22kto1k-5f0996db.pth'
    with pytest.raises(TeacherDownloadError, match=(
            r"MMPretrainSwinTeacher: cannot download the teacher checkpoint '"
            r"http://127.0.0.1:9/swin_large.*\.pth' .*no network seems reachable.*"
            r'--cfg-options model.teacher.checkpoint=/path/to/file.pth')):
        MODELS.build(B.swin_teacher(checkpoint=url))


def test_timm_pretrained_offline_says_how_to_pass_a_file(tmp_path, monkeypatch):
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_OFFLINE', True)
    monkeypatch.setenv('HF_HOME', str(tmp_path))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cfg = dict(_no_random(TIMM_VIT), model_name='vit_tiny_patch16_224.augreg_in21k_ft_in1k',
               pretrained=True)
    with pytest.raises(TeacherDownloadError, match=(
            r'could not fetch the pretrained weights of .vit_tiny_patch16_224.augreg.*'
            r'no network.*pretrained_cfg_overlay=dict\(file=.*'
            r'--cfg-options model.teacher.checkpoint=')):
        MODELS.build(cfg)
