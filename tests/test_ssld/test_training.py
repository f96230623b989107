"""Runner smoke tests: label-free and partial-label SSLD training on image folders."""
from __future__ import annotations

import os.path as osp

import numpy as np
import pytest
import torch

from tests.test_ssld._helpers import labeled_folder, random_teacher, textured


@pytest.mark.slow
def test_label_free_training_on_an_unlabeled_folder(tmp_path):
    from mmengine import Config
    from mmengine.runner import Runner
    pool = tmp_path / 'pool'
    for i in range(6):
        textured(str(pool / f'd{i % 2}' / f'{i}.png'), (40 * i, 100, 200 - 30 * i), seed=i)
    cfg = Config(dict(
        default_scope='mmscalekd', work_dir=str(tmp_path / 'work'),
        model=dict(
            type='ScaleKDDistiller',
            student=dict(type='ImageClassifier',
                         backbone=dict(type='ResNet', depth=18, base_channels=8),
                         neck=dict(type='GlobalAveragePooling'),
                         head=dict(type='LinearClsHead', num_classes=5, in_channels=64)),
            teacher=random_teacher(dict(
                type='TimmTeacher', model_name='resnet18', pretrained=False, input_size=32,
                model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=5))),
            distill_stages=[], logit_loss=dict(type='SymmetricKLLoss'), label_free=True,
            data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.] * 3,
                                   std=[64.] * 3, to_rgb=True)),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            dataset=dict(type='UnlabeledImageFolder', data_root=str(pool), pipeline=[
                dict(type='LoadImageFromFile'), dict(type='RandomResizedCrop', scale=32),
                dict(type='PackInputs')]),
            sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), randomness=dict(seed=0),
        log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    before = runner.model.student.head.fc.weight.detach().clone()
    runner.train()
    assert not torch.equal(before, runner.model.student.head.fc.weight)
    assert osp.isfile(tmp_path / 'work' / 'iter_3.pth')
    logs = runner.message_hub.get_scalar('train/distill.loss_kd')
    assert len(logs.data[0]) == 3 and np.isfinite(logs.data[0]).all()
    assert runner.message_hub.get_scalar('train/loss') is not None


@pytest.mark.slow
def test_partial_label_training_on_labeled_plus_unlabeled_batches(tmp_path):
    """Mixed batches: label term on the labeled samples only, SSLD loss on every sample."""
    from mmengine import Config
    from mmengine.runner import Runner
    labeled = labeled_folder(tmp_path)  # cat: 2 images, dog: 1 -> classes ('cat', 'dog')
    pool = tmp_path / 'pool'
    for i in range(3):
        textured(str(pool / f'{i}.png'), (40 * i, 100, 200 - 30 * i), seed=i)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(32, 32)),
                dict(type='PackInputs')]
    cfg = Config(dict(
        default_scope='mmscalekd', work_dir=str(tmp_path / 'work'),
        # A unique name: runners built in the same second otherwise share one MessageHub,
        # and this test reads the hub's loss history.
        experiment_name=f'partial_labels_{tmp_path.name}',
        model=dict(
            type='ScaleKDDistiller',
            student=dict(type='ImageClassifier',
                         backbone=dict(type='ResNet', depth=18, base_channels=8),
                         neck=dict(type='GlobalAveragePooling'),
                         head=dict(type='LinearClsHead', num_classes=2, in_channels=64)),
            teacher=random_teacher(dict(
                type='TimmTeacher', model_name='resnet18', pretrained=False, input_size=32,
                model_kwargs=dict(channels=(8, 16, 32, 64), num_classes=2))),
            distill_stages=[], logit_loss=dict(type='SymmetricKLLoss'),
            partial_labels=True, label_loss_weight=0.5,
            data_preprocessor=dict(type='MixedLabelClsDataPreprocessor', mean=[128.] * 3,
                                   std=[64.] * 3, to_rgb=True, num_classes=2)),
        train_dataloader=dict(
            # 6 samples, batches of 4 in order: [L, L, L, U], [U, U], then [L, L, L, U] again
            batch_size=4, num_workers=0,
            dataset=dict(type='LabeledUnlabeledDataset',
                         labeled=dict(type='CustomDataset', data_root=str(labeled)),
                         unlabeled=dict(type='UnlabeledImageFolder', data_root=str(pool)),
                         pipeline=pipeline),
            sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=dict(type='CheckpointHook', interval=3, by_epoch=False)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), randomness=dict(seed=0),
        log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    before = runner.model.student.head.fc.weight.detach().clone()
    runner.train()
    assert runner.iter == 3 and osp.isfile(tmp_path / 'work' / 'iter_3.pth')
    assert not torch.equal(before, runner.model.student.head.fc.weight)
    label = np.asarray(runner.message_hub.get_scalar('train/student.loss').data[0])
    kd = np.asarray(runner.message_hub.get_scalar('train/distill.loss_kd').data[0])
    assert len(label) == len(kd) == 3 and np.isfinite(label).all() and np.isfinite(kd).all()
    # batches 1 and 3 have 3 labeled samples: 0.5 * CE > 0; batch 2 has none: an exact 0 term
    assert label[0] > 0 and label[2] > 0 and label[1] == 0
    assert (kd > 0).all()


