"""An MMEngine Runner trains an mmpretrain classifier on CPU, checkpoints, and resumes."""
import os.path as osp

import torch
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset


class TinyImages(Dataset):
    """16 random 3x32x32 images in 4 classes, returned in mmpretrain's packed format."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = (torch.rand(16, 3, 32, 32, generator=g) * 255).to(torch.uint8)
        self.labels = torch.arange(16) % 4

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.images[i],
                    data_samples=DataSample().set_gt_label(int(self.labels[i])))


def _cfg(work_dir: str, max_iters: int) -> dict:
    return dict(
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=4,
                                   mean=[127.5] * 3, std=[127.5] * 3),
            backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=4, in_channels=64,
                      loss=dict(type='CrossEntropyLoss'))),
        work_dir=work_dir,
        train_dataloader=dict(dataset=TinyImages(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        param_scheduler=[dict(type='MultiStepLR', by_epoch=False, milestones=[3], gamma=0.1)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        default_scope='mmscalekd',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
    )


def test_runner_trains_saves_and_resumes(tmp_path) -> None:
    work_dir = str(tmp_path / 'work')
    runner = Runner(**_cfg(work_dir, max_iters=4))
    runner.train()
    assert osp.isfile(osp.join(work_dir, 'iter_4.pth'))
    trained = {k: v.clone() for k, v in runner.model.state_dict().items()}
    lr_after_4 = runner.optim_wrapper.get_lr()['lr'][0]
    assert abs(lr_after_4 - 0.005) < 1e-9  # the milestone at iter 3 was applied

    cfg = _cfg(work_dir, max_iters=6)
    cfg['resume'] = True  # auto-resume from the latest checkpoint in work_dir
    resumed = Runner(**cfg)
    resumed.load_or_resume()
    assert resumed.iter == 4
    for key, value in resumed.model.state_dict().items():
        torch.testing.assert_close(value, trained[key], msg=key)
    assert abs(resumed.optim_wrapper.get_lr()['lr'][0] - 0.005) < 1e-9
    resumed.train()
    assert resumed.iter == 6
    assert osp.isfile(osp.join(work_dir, 'iter_6.pth'))
