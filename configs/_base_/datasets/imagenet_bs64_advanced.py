# ImageNet-1k, ScaleKD's *advanced* strategy (spec §8.2): RandomResizedCrop (bicubic) + flip +
# RandAugment + RandomErasing, 64 images per GPU. The RandAugment strength here is the
# ConvNeXt-T / Swin-T / DeiT recipe, RandAug(total_level=10, magnitude=9); leaf configs override
# `train_pipeline` (and `train_dataloader.dataset.pipeline`) for the other students:
#   ResNet-50: RandAug(8, 7) + erasing 0.25;  MobileNet-V1: RandAug(8, 7), no erasing;
#   Mixer-S/B: RandAug(15, 12) + erasing 0.25. Per-GPU batch sizes also differ per student.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'

# ImageNet mean/std in RGB, 0-255 scale (spec §8.2).
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
)

# Padding and erasing values are given in the BGR order the images are loaded in.
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]

train_pipeline = [
    dict(type='LoadImageFromFileOrSkip'),  # a corrupt image: warn, count, draw another
    # 224^2, bicubic through pillow (spec §8.2 "RRC bicubic")
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',  # spec §8.2
        num_policies=2,  # 2 ops per image (spec §8.2)
        total_level=10,  # spec §8.2 (ConvNeXt-T/Swin-T/DeiT row)
        magnitude_level=9,  # spec §8.2
        magnitude_std=0.5,  # spec §8.2
        hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic'),  # rounded bgr_mean
    ),
    dict(
        type='RandomErasing',
        erase_prob=0.25,  # spec §8.2
        # timm's 'rand' erasing defaults, as in mmpretrain's imagenet_bs64_swin_224.py
        mode='rand',
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std,
    ),
    dict(type='PackInputs'),
]

# Resize the short side to 256 (bicubic), centre-crop 224 (spec §8.2; DeiT-B resizes to 224).
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,  # per GPU (spec §8.2: ResNet-50 / MobileNet-V1 advanced, x 32 GPUs = 2048)
    num_workers=5,  # mmpretrain default
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)

val_dataloader = dict(
    batch_size=64,
    num_workers=5,
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

test_dataloader = val_dataloader
test_evaluator = val_evaluator
