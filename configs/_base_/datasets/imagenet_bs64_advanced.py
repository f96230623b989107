# ImageNet-1k, ScaleKD's advanced strategy for the ConvNeXt-T, Swin-T and ViT students:
# RandomResizedCrop (pillow, bicubic) + flip + RandAugment(10, 9) + RandomErasing 0.25.
# Official: deep-optimization/ScaleKD@ee56c7e
# configs/_base_/datasets/imagenet_bs64_swin_224.py:15-41
# (each student config sets its own per-GPU batch). Audit: docs/recipe_audit.md.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'

# ImageNet mean/std in RGB, 0-255 scale.
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
    # Ours: a corrupt image is warned about, counted and replaced by another index
    # (docs/reliability.md); the official pipeline uses LoadImageFromFile.
    dict(type='LoadImageFromFileOrSkip'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='RandAugment',
        policies='timm_increasing',
        num_policies=2,
        total_level=10,
        magnitude_level=9,
        magnitude_std=0.5,
        hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic'),  # rounded bgr_mean
    ),
    dict(
        type='RandomErasing',
        erase_prob=0.25,
        mode='rand',  # timm's 'rand' erasing
        min_area_ratio=0.02,
        max_area_ratio=1 / 3,
        fill_color=bgr_mean,
        fill_std=bgr_std,
    ),
    dict(type='PackInputs'),
]

# Resize the short side to 256 (pillow, bicubic), centre-crop 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    # per GPU; each student config sets its own (ConvNeXt-T 32, Swin-T 16, ViT-S/16 32,
    # ViT-B/16 16, ViT-B/14 32)
    batch_size=64,
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
