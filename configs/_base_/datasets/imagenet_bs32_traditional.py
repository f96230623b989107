# ImageNet-1k, ScaleKD's traditional strategy: RandomResizedCrop 224 + flip only, 32 images per
# GPU (x 8 GPUs = 256). The official traditional student configs inherit mmcls'
# imagenet_bs32.py (deep-optimization/ScaleKD@ee56c7e
# mmcls/.mim/configs/_base_/datasets/imagenet_bs32.py:11-23); this file is the same recipe.
# Audit: docs/recipe_audit.md.
dataset_type = 'ImageNet'
data_root = 'data/imagenet'

# ImageNet mean/std in RGB, 0-255 scale (same file:3-10). The Runner passes this to the model
# (distiller or classifier) as its data_preprocessor.
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,  # images are decoded as BGR
)

train_pipeline = [
    # Ours: a corrupt image is warned about, counted and replaced by another index
    # (docs/reliability.md); the official pipeline uses LoadImageFromFile.
    dict(type='LoadImageFromFileOrSkip'),
    dict(type='RandomResizedCrop', scale=224),  # OpenCV, bilinear (the mmcls default)
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]

# Resize the short side to 256, centre-crop 224.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,  # per GPU; 8 GPUs -> 256
    num_workers=5,  # mmpretrain default
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
)

val_dataloader = dict(
    batch_size=32,
    num_workers=5,
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))

# ImageNet's test labels are not public: test on the validation split.
test_dataloader = val_dataloader
test_evaluator = val_evaluator
