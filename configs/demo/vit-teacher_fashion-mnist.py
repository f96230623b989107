# Teacher of the CPU demo (tools/demo.py): a small ViT (patch 7 -> 4x4 tokens, width 128, 4 blocks,
# 4 heads; 0.80 M parameters) trained by this config on the demo's image set. No pretrained ViT
# ships offline, so the demo trains its own; checkpoints/demo/vit-teacher_fashion-mnist.pth is
# this config's result on Fashion-MNIST, its data fingerprint and recipe in its `meta`.
# Recipe: AdamW, no augmentation, all training images with their labels except a stratified
# held-out slice, on which the teacher is evaluated every max_iters / 20 steps: the best
# checkpoint is kept and training stops early when the held-out top-1 has not improved by
# 0.1 point for 5 evaluations (a plateau). tools/demo.py sets max_iters from the number of training
# images (mmscalekd.demo.teacher.teacher_step_budget: 100 epochs, within 1000-6000 steps) and the
# held-out size (mmscalekd.demo.teacher.teacher_holdout_size); the values below are Fashion-MNIST's.
_base_ = ['./_base_/fashion-mnist_label-scarce.py']

embed_dims = 128
batch_size = 128
lr = 3e-3
max_iters = 6000  # teacher_step_budget(58000 training images, batch 128)
val_interval = 300  # max_iters / 20
teacher_holdout = 2000  # teacher_holdout_size(60000 images, 10 classes)

model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=embed_dims, num_layers=4, num_heads=4, feedforward_channels=512),
        img_size={{_base_.img_size}},
        patch_size=7,  # 4x4 patch tokens
        in_channels={{_base_.in_channels}},
        out_type='cls_token',
        final_norm=True,
        drop_path_rate=0.0),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes={{_base_.num_classes}},
        in_channels=embed_dims,
        loss=dict(type='CrossEntropyLoss')))

# SmallImageDataset as in the base config; the data sets merge into the base's dicts.
image_set = dict(type='SmallImageDataset', img_size={{_base_.img_size}},
                 channels={{_base_.in_channels}}, subset_seed={{_base_.subset_seed}},
                 serialize_data=False, pipeline=[dict(type='PackInputs')])
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    dataset=dict(image_set, split='train', subset=(teacher_holdout, ), complement=True),
    sampler=dict(type='InfiniteSampler', shuffle=True),
)
# The held-out slice of the training split: model selection and the plateau check.
val_dataloader = dict(
    dataset=dict(image_set, split='train', subset=(teacher_holdout, ), test_mode=True))
test_dataloader = dict(dataset=dict(image_set, split='test', test_mode=True))

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05))
# Warm-up over the first 8 % of the steps (one epoch of Fashion-MNIST), then cosine decay to
# lr / 300 = 1e-5.
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr, pct_start=0.08, anneal_strategy='cos', div_factor=100.0,
         final_div_factor=3.0, by_epoch=False),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=val_interval)
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='accuracy/top1', rule='greater', min_delta=0.1,
         patience=5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=-1, save_last=False,
                    save_best='accuracy/top1', rule='greater', max_keep_ckpts=1),
    non_finite=dict(type='NonFiniteLossHook'),  # stop at a NaN/inf loss (default_runtime.py)
)
