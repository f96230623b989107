"""Wrong inputs a new user makes: each fails early with one message naming the value.

Every case builds the smallest thing that reaches the check (a tiny distiller, a dataset, a
launch environment, a hook) and asserts the exception type and the words of its message: the
bad value, and what is accepted where the set is small enough to list.
"""
import importlib.util
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmscalekd.registry import DATASETS, HOOKS, MODELS
from mmscalekd.utils import CorruptCheckpointError, load_checkpoint_file
from mmscalekd.utils.launch import LaunchError, check_launch_env
from tests import _builders as B

ROOT = Path(__file__).resolve().parents[2]
TPP, FINAL = (64, (4, 4)), (128, (2, 2))  # tiny Swin teacher at 64 px
RESNET = dict(type='ResNet', depth=18, base_channels=8, stem_channels=8, out_indices=(2, 3))


def distiller(**kwargs) -> dict:
    stages = kwargs.pop('distill_stages', None) or B.stages((32, (4, 4)), (64, (2, 2)), TPP,
                                                            FINAL)
    return B.distiller(B.classifier(RESNET, 64), kwargs.pop('teacher', B.swin_teacher()),
                       stages, **kwargs)


def with_stage(**changes) -> dict:
    stages = B.stages((32, (4, 4)), (64, (2, 2)), TPP, FINAL)
    for key, value in changes.items():
        if key.startswith('connector.'):
            stages[0]['connector'][key.split('.', 1)[1]] = value
        else:
            stages[0][key] = value
    return distiller(distill_stages=stages)


def _write_images(folder: Path, n: int = 2) -> None:
    import cv2
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f'{i}.png'), np.full((8, 8, 3), 40 * i, np.uint8))


def _train_tool():
    spec = importlib.util.spec_from_file_location('train_tool', ROOT / 'tools/train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _teacher_ckpt(tmp: Path, state: dict) -> str:
    path = tmp / 'teacher.pth'
    torch.save({'state_dict': state}, path)
    return str(path)


def _nan_hook(value: float, key: str = 'distill.loss_s3_freq'):
    hook = HOOKS.build(dict(type='NonFiniteLossHook'))
    runner = SimpleNamespace(iter=41, epoch=2, optim_wrapper=SimpleNamespace(
        get_lr=lambda: {'lr': [0.1]}))
    return lambda: hook.after_train_iter(runner, 0, None, {
        'loss': torch.tensor(value), key: torch.tensor(value), 'student.loss': torch.tensor(1.)})


# Each case: (id, callable(tmp_path) that must raise, exception type, regex on the message).
CASES = [
    ('teacher_type_misspelt',
     lambda t: MODELS.build(distiller(teacher=dict(B.swin_teacher(), type='MMPretrainSwinTeachr'))),
     KeyError, r"'MMPretrainSwinTeachr'.*MMPretrainSwinTeacher"),
    ('teacher_not_an_adapter',
     lambda t: MODELS.build(distiller(teacher=B.swin_teacher()['model'])),
     TypeError, r'ImageClassifier.*MMPretrainSwinTeacher'),
    ('student_type_misspelt',
     lambda t: MODELS.build(dict(distiller(), student=dict(B.classifier(RESNET, 64),
                                                           type='ImageClassifer'))),
     KeyError, r'ImageClassifer.*registry'),
    ('stage_index_out_of_range',
     lambda t: MODELS.build(with_stage(student_index=5)),
     ValueError, r'student_index=5 is out of range.*2 output'),
    ('connector_channels_do_not_match_student',
     lambda t: MODELS.build(with_stage(**{'connector.in_channels': 48})),
     ValueError, r"'s3': connector in_channels=48 is given, but in_channels=32 is derived from "
                 r'the student output 0 of shape \(32, 4, 4\)'),
    ('connector_dims_do_not_match_teacher',
     lambda t: MODELS.build(with_stage(**{'connector.embed_dims': 96})),
     ValueError, r"'s3': connector embed_dims=96 is given, but embed_dims=64 is derived from the "
                 r"teacher's TPP input \(tpp_dims, tpp_hw\) = 64, \(4, 4\)"),
    ('query_from_names_no_stage',
     lambda t: MODELS.build(distiller(distill_stages=[
         dict(B.stages((32, (4, 4)), (64, (2, 2)), TPP, FINAL)[1], query_from='s9')])),
     ValueError, r"query_from='s9' names no earlier stage"),
    ('unknown_stage_key',
     lambda t: MODELS.build(with_stage(teacher_index=3)),
     ValueError, r"unknown keys \['teacher_index'\]; accepted"),
    ('negative_label_loss_weight',
     lambda t: MODELS.build(distiller(label_loss_weight=-1)),
     ValueError, r'label_loss_weight must be >= 0, got -1'),
    ('teacher_input_size_zero',
     lambda t: MODELS.build(B.swin_teacher(input_size=0)),
     ValueError, r'input_size must be a positive int .* got \(0, 0\)'),
    ('teacher_mean_without_std',
     lambda t: MODELS.build(B.swin_teacher(mean=[1, 2, 3])),
     ValueError, r'give both mean and std'),
    ('teacher_checkpoint_missing',
     lambda t: MODELS.build(B.swin_teacher(checkpoint=str(t / 'nope.pth'))),
     FileNotFoundError, r"nope\.pth' does not exist.*local \.pth file or an http"),
    ('teacher_checkpoint_corrupt',
     lambda t: (t.joinpath('bad.pth').write_text('<html>404 Not Found</html>'),
                MODELS.build(B.swin_teacher(checkpoint=str(t / 'bad.pth')))),
     CorruptCheckpointError, r"bad\.pth' cannot be read: it is truncated or not a torch"),
    ('teacher_checkpoint_of_another_architecture',
     lambda t: MODELS.build(B.swin_teacher(checkpoint=_teacher_ckpt(
         t, {'backbone.conv1.weight': torch.zeros(8, 3, 3, 3)}))),
     RuntimeError, r'does not match the teacher model.*another architecture.*missing key'),
    ('load_from_missing',
     lambda t: load_checkpoint_file(str(t / 'missing.pth')),
     FileNotFoundError, r"missing\.pth' does not exist"),
    ('resume_checkpoint_truncated',
     lambda t: (torch.save({'state_dict': {'w': torch.zeros(1000)}}, t / 'iter_4.pth'),
                t.joinpath('iter_4.pth').write_bytes(t.joinpath('iter_4.pth').read_bytes()[:300]),
                load_checkpoint_file(str(t / 'iter_4.pth'))),
     CorruptCheckpointError, r'iter_4\.pth.*truncated'),
    ('image_folder_without_images',
     lambda t: (t.joinpath('notes.txt').write_text('x'), t.joinpath('a.csv').write_text('1'),
                DATASETS.build(dict(type='UnlabeledImageFolder', data_root=str(t)))),
     ValueError, r'No image found below .*Accepted extensions.*\.jpg'),
    ('image_folder_missing',
     lambda t: DATASETS.build(dict(type='UnlabeledImageFolder', data_root=str(t / 'nowhere'))),
     FileNotFoundError, r'nowhere.*does not exist'),
    ('labeled_dataset_without_images',
     lambda t: (t.joinpath('cat').mkdir(), t.joinpath('cat', 'x.txt').write_text('x'),
                DATASETS.build(dict(type='CustomDataset', data_root=str(t)))),
     RuntimeError, r'Found 0 files|No image|0 files'),
    ('labels_needed_but_dataset_unlabeled',
     lambda t: MODELS.build(distiller()).loss(*B.batch(64, labels=False)),
     ValueError, r'no ground-truth label.*label_free=True'),
    ('nan_loss',
     lambda t: _nan_hook(float('nan'))(),
     FloatingPointError, r'iteration 42 .*distill\.loss_s3_freq=nan'),
    ('inf_loss',
     lambda t: _nan_hook(math.inf, 'student.loss_cls')(),
     FloatingPointError, r'iteration 42 .*student\.loss_cls=inf'),
    ('more_processes_than_gpus',
     lambda t: check_launch_env('pytorch', dict(RANK='0', WORLD_SIZE='4', LOCAL_RANK='0',
                                                MASTER_ADDR='h', MASTER_PORT='1',
                                                LOCAL_WORLD_SIZE='4'), num_gpus=2),
     LaunchError, r'4 processes .* only 2 CUDA GPU'),
    ('launcher_misspelt',
     lambda t: check_launch_env('torchrun', {}, num_gpus=0),
     ValueError, r"one of \('none', 'pytorch', 'slurm', 'mpi'\), got 'torchrun'"),
    ('student_backbone_type_misspelt',
     lambda t: MODELS.build(dict(distiller(),
                                 student=B.classifier(dict(RESNET, type='ResNt'), 64))),
     KeyError, r"ScaleKDDistiller\.student\.backbone: unknown type 'ResNt'.*did you mean "
               r"'ResNet'.*registered_names\(g\.MODELS\)"),
    ('connector_type_misspelt',
     lambda t: MODELS.build(with_stage(**{'connector.type': 'CrossAttnProjector'})),
     KeyError, r"distill_stages\['s3'\]\.connector: unknown type 'CrossAttnProjector'.*"
               r"did you mean 'CrossAttentionProjector'"),
    ('stage_loss_type_misspelt',
     lambda t: MODELS.build(with_stage(loss=dict(type='DualViewMimicLos'))),
     KeyError, r"distill_stages\['s3'\]\.loss: unknown type 'DualViewMimicLos'.*"
               r"did you mean 'DualViewMimicLoss'"),
    ('logit_loss_type_misspelt',
     lambda t: MODELS.build(distiller(logit_loss=dict(type='softtargetkdloss'))),
     KeyError, r"ScaleKDDistiller\.logit_loss: unknown type 'softtargetkdloss'.*"
               r"did you mean 'SoftTargetKDLoss'"),
    ('teacher_backbone_type_misspelt',
     lambda t: MODELS.build(_teacher_with_backbone('SwinTransformr')),
     KeyError, r"MMPretrainSwinTeacher\.model\.backbone: unknown type 'SwinTransformr'.*"
               r"did you mean 'SwinTransformer'"),
    ('distiller_teacher_backbone_type_misspelt',
     lambda t: MODELS.build(distiller(teacher=_teacher_with_backbone('SwinTransformr'))),
     KeyError, r"ScaleKDDistiller\.teacher\.model\.backbone: unknown type 'SwinTransformr'"),
    ('sampler_start_out_of_range',
     lambda t: _sampler_start(t, 99),
     ValueError, r'position must be an int in \[0, 2\].*got 99'),
]


def _teacher_with_backbone(backbone_type: str) -> dict:
    teacher = B.swin_teacher()
    teacher['model']['backbone']['type'] = backbone_type
    return teacher


def _sampler_start(tmp: Path, position: int) -> None:
    from mmscalekd.datasets import ResumableSampler
    _write_images(tmp / 'imgs')
    dataset = DATASETS.build(dict(type='UnlabeledImageFolder', data_root=str(tmp / 'imgs')))
    ResumableSampler(dataset, seed=0).start_at(position)


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_early_with_a_clear_message(case, tmp_path: Path) -> None:
    _, make, error, match = case
    with pytest.raises(error, match=match):
        make(tmp_path)


def test_at_least_twenty_cases() -> None:
    assert len({c[0] for c in CASES}) >= 20


@pytest.mark.parametrize('argv, words', [
    (['missing_config.py'], 'missing_config.py'),
    ([str(ROOT / 'tests/data/configs/tiny_resnet_custom.py'), '--resume', 'gone.pth'],
     'gone.pth'),
], ids=['config_missing', 'resume_checkpoint_missing'])
def test_train_tool_refuses_missing_files(argv, words, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        _train_tool().main(argv)
    assert exc.value.code == 2 and words in capsys.readouterr().err


def test_corrupt_image_is_skipped_with_warning_and_counted(tmp_path: Path) -> None:
    _write_images(tmp_path, n=3)
    (tmp_path / '1.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    dataset = DATASETS.build(dict(type='UnlabeledImageFolder', data_root=str(tmp_path),
                                  pipeline=[dict(type='LoadImageFromFile'),
                                            dict(type='PackInputs')]))
    with pytest.warns(UserWarning, match=r'Skipping unreadable image .*1\.png'):
        sample = dataset[1]
    assert dataset.num_skipped == 1 and dataset.skipped_paths[0].endswith('1.png')
    assert sample['inputs'].shape == (3, 8, 8)  # another image was drawn instead


def test_finite_losses_pass_the_guard() -> None:
    _nan_hook(1.5)()  # no exception
    with pytest.raises(TypeError, match="check_all must be a bool, got 'yes'"):
        HOOKS.build(dict(type='NonFiniteLossHook', check_all='yes'))


@pytest.mark.parametrize('tool, config, option, words', [
    ('train', 'tests/data/configs/tiny_resume_classifier.py', 'model.backbone.type=ResNt',
     r"model\.backbone: unknown type 'ResNt'.*did you mean 'ResNet'"),
    ('test', 'configs/scalekd/scalekd_swin-l_resnet50_8xb32_100e_in1k.py',
     'model.student.backbone.type=ResNetV1D',
     r"model\.student\.backbone: unknown type 'ResNetV1D'.*did you mean 'ResNetV1d'"),
    ('train', 'configs/scalekd/scalekd_swin-l_resnet50_8xb32_100e_in1k.py',
     'model.distill_stages.0.connector.type=CrossAttnProjector',
     r"model\.distill_stages\[0\]\.connector: unknown type 'CrossAttnProjector'"),
], ids=['train_classifier_backbone', 'test_distiller_student_backbone',
        'train_distiller_connector'])
def test_tools_check_model_types_before_building(tool, config, option, words,
                                                 tmp_path: Path) -> None:
    """A misspelt nested type stops the tool before the Runner builds (no weights fetched)."""
    ckpt = tmp_path / 'student.pth'
    ckpt.write_bytes(b'')
    spec = importlib.util.spec_from_file_location(f'{tool}_tool', ROOT / f'tools/{tool}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = [str(ROOT / config)] + ([str(ckpt)] if tool == 'test' else [])
    argv += ['--work-dir', str(tmp_path / 'work'), '--cfg-options', option]
    with pytest.raises(SystemExit) as exc:
        module.main(argv)
    assert isinstance(exc.value.code, str)
    assert re.search(rf'tools/{tool}\.py: error: {words}', exc.value.code), exc.value.code
    assert not (tmp_path / 'work').exists()  # nothing was built or written


def test_type_suggestions_are_case_insensitive_and_list_all() -> None:
    from mmscalekd.registry import TRANSFORMS, close_type_names, registered_names
    assert close_type_names('resnet', MODELS)[0] == 'ResNet'
    assert close_type_names('mmpretrain.SwinTransformr', MODELS)[0] == 'SwinTransformer'
    names = registered_names(MODELS)
    # our own modules, mmpretrain's and MMEngine's (the parents) are all listed
    assert {'ScaleKDDistiller', 'ResNet', 'BaseDataPreprocessor'} <= set(names)
    assert 'PackInputs' in registered_names(TRANSFORMS) and 'PackInputs' not in names


@pytest.mark.parametrize('config', sorted(
    str(p.relative_to(ROOT)) for folder in ('configs/scalekd', 'configs/ssld', 'configs/demo',
                                            'tests/data/configs')
    for p in (ROOT / folder).glob('*.py')))
def test_shipped_configs_pass_the_type_check(config: str) -> None:
    """No false alarm: every type of our configs' models resolves (init_cfg, augments, ...)."""
    from mmengine.config import Config

    from mmscalekd.registry import check_model_config
    check_model_config(Config.fromfile(str(ROOT / config)))
