# SSLD stage 1: ResNeXt101-32x16d-WSL teacher -> ResNet-50-D (ResNet50_vd) student, label-free
# distillation on ImageNet-1k train + mined unlabeled images, 360 epochs.
# Paper: Cui et al., "Beyond Self-Supervision: A Simple Yet Effective Network Distillation
# Alternative to Improve Backbones", https://arxiv.org/abs/2103.05959 (anchors.md §C).
# Reported (PaddleClas, not reproduced by us): R50_vd 82.07 after this stage (anchors §C.3).
# Next: ssld_..._resnet50-d_..._in1k-ft.py (stage 2), then ..._fixres320.py (stage 3).
# Mined list: python tools/ssld/mine_unlabeled.py <teacher config> --pool data/in22k \
#     --val data/imagenet/val --topk 4000 --out data/ssld_mined
_base_ = ['../_base_/default_runtime.py']
default_scope = 'mmscalekd'

# ---- teacher (anchors §C.3: ResNeXt101_32x16d_wsl for ResNet-family students, 84.2% top-1) ----
# timm name checked with timm.list_models(pretrained=True) (timm 1.0.31). TimmTeacher takes the
# teacher's mean/std from timm's pretrained_cfg and renormalises the student's inputs.
TEACHER = 'resnext101_32x16d.fb_wsl_ig1b_ft_in1k'

# ---- schedule (anchors §C.3: R50_vd 1,024 images on 32 GPUs, LR 0.4, L2 7e-5, 360 epochs,
# cosine with warm-up) ----
NUM_GPUS = 32
BATCH_PER_GPU = 32  # 1,024 / 32 GPUs (anchors §C.3)
LR = 0.4  # anchors §C.3
WEIGHT_DECAY = 7e-5  # "somewhat lower L2 decay" (anchors §C.1); value from §C.3
EPOCHS = 360  # anchors §C.3
WARMUP_EPOCHS = 5  # from the newer PPLCNet SSLD config (anchors §C.3); not stated for R50_vd
MOMENTUM = 0.9  # "Momentum" optimizer (anchors §C.3); the value is not stated in the sources

# ---- data ----
IMAGENET_ROOT = 'data/imagenet'
MINED_ROOT = 'data/in22k'  # the pool folder given to the mining tool (--pool)
MINED_LIST = 'data/ssld_mined/filelist.txt'  # the mining tool's output (--out)

data_preprocessor = dict(
    type='ClsDataPreprocessor', num_classes=1000,
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

# The SSLD stage-1 augmentation is not stated in the sources; standard RandomResizedCrop + flip.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNetV1d', depth=50),  # ResNet-50-D = PaddleClas ResNet50_vd
        neck=dict(type='GlobalAveragePooling'),
        # No label smoothing (anchors §C.1); with label_free=True the head loss is never used.
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5))),
    teacher=dict(type='TimmTeacher', model_name=TEACHER, pretrained=True),
    distill_stages=[],  # plain SSLD: logits only
    # Symmetric KL at T=1, batch mean (anchors §C.1: PaddleClas JSDivLoss / DMLLoss)
    logit_loss=dict(type='SymmetricKLLoss', temperature=1.0, loss_weight=1.0),
    label_free=True,  # no label term; labels never read (anchors §C.1)
    data_preprocessor=data_preprocessor,
)

train_dataloader = dict(
    batch_size=BATCH_PER_GPU,
    num_workers=8,  # not stated in the sources
    dataset=dict(
        type='LabeledUnlabeledDataset',
        # ImageNet-1k train merged with the mined images, ~5M in total (anchors §C.2 step 4)
        labeled=dict(type='ImageNet', data_root=IMAGENET_ROOT, split='train'),
        unlabeled=dict(type='UnlabeledImageFolder', data_root=MINED_ROOT, ann_file=MINED_LIST),
        pipeline=train_pipeline,
        keep_labels=False),  # label-free: homogeneous batches, plain ClsDataPreprocessor
    sampler=dict(type='DefaultSampler', shuffle=True),
)
val_dataloader = dict(
    batch_size=BATCH_PER_GPU,
    num_workers=8,
    dataset=dict(type='ImageNet', data_root=IMAGENET_ROOT, split='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=WARMUP_EPOCHS,
         convert_to_iter_based=True),  # start factor not stated in the sources
    dict(type='CosineAnnealingLR', T_max=EPOCHS - WARMUP_EPOCHS, by_epoch=True,
         begin=WARMUP_EPOCHS, end=EPOCHS),
]
train_cfg = dict(by_epoch=True, max_epochs=EPOCHS, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=NUM_GPUS * BATCH_PER_GPU)
