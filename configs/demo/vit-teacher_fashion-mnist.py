# Teacher of the CPU demo (tools/demo.py): a small ViT trained on Fashion-MNIST by our own config.
# No pretrained ViT ships offline, so the demo trains its own teacher; tools/demo.py uses the
# committed checkpoint checkpoints/demo/vit-teacher_fashion-mnist.pth when present.
# Architecture and recipe from ../shared/spec/data.md ("ViT patch 7, dim 128, depth 4, 4 heads":
# 0.80 M params, ~88.5 % after 5 epochs, ~90 % after 12 on 2 CPU cores).
default_scope = 'mmscalekd'

data_root = 'data/fashion_mnist'  # uncompressed IDX files; tools/setup.sh puts them there
num_classes = 10
embed_dims = 128
max_epochs = 12
batch_size = 128
lr = 3e-3  # AdamW, data.md

# Fashion-MNIST pixel mean/std 0.2860/0.3530 (data.md), in 0-255 units.
data_preprocessor = dict(
    type='ClsDataPreprocessor', num_classes=num_classes, mean=[72.93], std=[90.02], to_rgb=False)

model = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=4, feedforward_channels=512),
        img_size=28,
        patch_size=7,  # 4x4 patch tokens
        in_channels=1,
        out_type='cls_token',
        final_norm=True,
        drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=num_classes,
        in_channels=embed_dims,
        loss=dict(type='CrossEntropyLoss')))

# ArrayFashionMNIST (mmscalekd): mmpretrain's FashionMNIST with the IDX files decoded once per
# process (same samples); see configs/demo/_base_/fashion-mnist_label-scarce.py.
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    dataset=dict(type='ArrayFashionMNIST', data_root=data_root, split='train', download=False,
                 pipeline=[dict(type='PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=512,
    num_workers=0,
    dataset=dict(type='ArrayFashionMNIST', data_root=data_root, split='test', test_mode=True,
                 download=False, pipeline=[dict(type='PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, T_max=max_epochs - 1, eta_min=1e-5,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=1, save_best='auto'),
    non_finite=dict(type='NonFiniteLossHook'),  # stop at a NaN/inf loss (default_runtime.py)
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
