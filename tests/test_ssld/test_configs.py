"""The SSLD configs: they parse, build with a shrunk teacher, and follow the stated recipes."""
from __future__ import annotations

import glob
import os.path as osp

import pytest
import torch

from mmscalekd.registry import MODELS
from tests.test_ssld._helpers import REPO, random_teacher

SSLD_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'ssld', 'ssld*.py')))
# Plain SSLD is ScaleKDDistiller(distill_stages=[], logit loss, label_free=True) with a
# logits-only timm CNN teacher. Tests shrink that teacher: same timm name (so the same
# architecture family and pretrained_cfg mean/std), tiny widths, pretrained=False (no network).
TINY_TIMM_RESNET = dict(layers=(1, 1, 1, 1), channels=(8, 16, 32, 64), stem_width=8)
# The schedules the configs state, from PaddlePaddle/PaddleClas@0e6b47b
# docs/en/advanced_tutorials/distillation/distillation_en.md (Sec. 3.2/3.3 tables) and the
# PP-HGNetV2 B4 SSLD yaml files (Optimizer.lr.learning_rate, batch_size, Global.epochs).
SCHEDULES = {  # name: (loss, GPUs x batch, LR, weight decay, epochs)
    'ssld_resnext101-32x16d-wsl_resnet50-d_32xb32_360e_in1k-unlabeled.py':
        ('SymmetricKLLoss', 1024, 0.4, 7e-5, 360),
    'ssld_resnext101-32x16d-wsl_resnet50-d_32xb32_60e_in1k-ft.py':
        ('SymmetricKLLoss', 1024, 0.004, 7e-5, 60),
    'ssld_resnet50-d_mobilenet-v3-l_24xb240_360e_in1k-unlabeled.py':
        ('SymmetricKLLoss', 5760, 3.65625, 1e-5, 360),
    'ssld_resnet50-d_mobilenet-v3-l_8xb256_30e_in1k-ft.py':
        ('SymmetricKLLoss', 2048, 0.008, 1e-5, 30),
    'ssld-ce_resnext101-32x16d-wsl_resnet50-d_8xb128_360e_in1k-unlabeled.py':
        ('SoftTargetKDLoss', 1024, 0.5, 2e-5, 360),
    'ssld-ce_resnext101-32x16d-wsl_resnet50-d_8xb128_60e_in1k-ft.py':
        ('SoftTargetKDLoss', 1024, 0.005, 2e-5, 60),
}


def test_ssld_config_list():
    names = {osp.basename(p) for p in SSLD_CONFIGS}
    assert names == set(SCHEDULES) | {'ssld_resnet50-d_in1k-fixres320.py',
                                      'ssld_mobilenet-v3-l_in1k-fixres320.py'}


@pytest.mark.parametrize('path', SSLD_CONFIGS, ids=osp.basename)
def test_ssld_configs_state_the_sourced_recipe(path):
    from mmengine import Config
    cfg = Config.fromfile(path)
    name = osp.basename(path)
    train = cfg.train_dataloader.dataset.pipeline
    # corrupt training images are skipped; evaluation sees every image
    assert train[0]['type'] == 'LoadImageFromFileOrSkip'
    assert cfg.val_dataloader.dataset.pipeline[0]['type'] == 'LoadImageFromFile'
    if name not in SCHEDULES:
        return
    loss, batch, lr, wd, epochs = SCHEDULES[name]
    assert cfg.model.logit_loss.type == loss
    if loss == 'SoftTargetKDLoss':  # PaddleClas CELoss with soft labels: T = 1, weight 1
        assert (cfg.model.logit_loss.mode, cfg.model.logit_loss.temperature,
                cfg.model.logit_loss.loss_weight) == ('ce', 1.0, 1.0)
    assert cfg.NUM_GPUS * cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == batch
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(lr)
    assert cfg.optim_wrapper.optimizer.weight_decay == pytest.approx(wd)
    assert cfg.train_cfg.max_epochs == epochs == cfg.param_scheduler[-1]['end']
    if name.endswith('-ft.py'):
        stage1 = name.replace('8xb256_30e', '24xb240_30e').replace(
            f'_{epochs}e_in1k-ft', '_360e_in1k-unlabeled')
        assert cfg.load_from == f'work_dirs/{osp.splitext(stage1)[0]}/epoch_360.pth'
        assert osp.isfile(osp.join(REPO, 'configs', 'ssld', stage1)), stage1
    else:
        assert cfg.train_dataloader.dataset.type == 'LabeledUnlabeledDataset'
        assert cfg.train_dataloader.dataset.unlabeled.ann_file == 'data/ssld_mined/filelist.txt'


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
        assert model_cfg.teacher.type == 'TimmTeacher'
        import timm
        assert model_cfg.teacher.model_name in timm.list_models(pretrained=True)
        # the same timm teacher, shrunk and offline (see TINY_TIMM_RESNET)
        model_cfg.teacher = random_teacher(dict(
            type='TimmTeacher', model_name=model_cfg.teacher.model_name, pretrained=False,
            input_size=64, model_kwargs=TINY_TIMM_RESNET))
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
        train = cfg.train_dataloader.dataset.pipeline
        assert 'fixres320' in path and train[1:] == cfg.val_dataloader.dataset.pipeline[1:]
        model.train()  # MobileNetV3 applies frozen_stages in train(), as the Runner calls it
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        trainable = set()
        for group in wrapper.optimizer.param_groups:
            if group['lr'] > 0:
                trainable |= {id(p) for p in group['params'] if p.requires_grad}
        names = {n for n, p in model.named_parameters() if id(p) in trainable}
        assert names in ({'head.fc.weight', 'head.fc.bias'},
                         {'head.layers.1.fc.weight', 'head.layers.1.fc.bias'}), names


def test_soft_ce_is_paddleclas_celoss_with_soft_labels():
    """CELoss(x, label) with label.shape == x.shape: softmax(label) as soft label, batch mean."""
    torch.manual_seed(0)
    s, t = torch.randn(4, 7), torch.randn(4, 7)
    loss = MODELS.build(dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=1.0,
                             mode='ce'))
    want = -(t.softmax(1) * s.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(loss(s, t), want)


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

