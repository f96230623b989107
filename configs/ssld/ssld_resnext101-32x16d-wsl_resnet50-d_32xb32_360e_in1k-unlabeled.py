# SSLD stage 1 (symmetric KL): ResNeXt101-32x16d-WSL teacher -> ResNet-50-D (ResNet50_vd)
# student, label-free distillation on ImageNet-1k train + mined unlabeled images, 360 epochs.
# Paper: Cui et al., "Beyond Self-Supervision: A Simple Yet Effective Network Distillation
# Alternative to Improve Backbones", https://arxiv.org/abs/2103.05959.
# Recipe source (DOC): PaddlePaddle/PaddleClas@0e6b47b
#   docs/en/advanced_tutorials/distillation/distillation_en.md. Reported there, not reproduced
#   by us: ResNet50_vd 82.07 top-1 after this stage (DOC Sec. 3.2 table).
# Next: ssld_..._32xb32_60e_in1k-ft.py (stage 2), then ssld_resnet50-d_in1k-fixres320.py.
# Mined list: tools/ssld/mine_unlabeled.py (see configs/ssld/README.md, "Mining").
_base_ = ['../_base_/default_runtime.py']
default_scope = 'mmscalekd'

# ---- teacher: ResNeXt101_32x16d_wsl (84.2% top-1, DOC Sec. 3.1) for ResNet students ----
# timm name checked with timm.list_models(pretrained=True) (timm 1.0.31). TimmTeacher takes the
# teacher's mean/std from timm's pretrained_cfg and renormalises the student's inputs.
TEACHER = 'resnext101_32x16d.fb_wsl_ig1b_ft_in1k'

# ---- schedule: DOC Sec. 3.2 table, row ResNet50_vd ----
NUM_GPUS = 32
BATCH_PER_GPU = 32  # "batch size/gpu cards" 1024/32
LR = 0.4  # "base lr"
WEIGHT_DECAY = 7e-5  # "l2_ecay"
EPOCHS = 360  # "num_epoch"
# DOC names "cosine_decay_warmup" but states neither the warm-up length nor the momentum; both
# from PaddleClas@0e2659e ppcls/configs/ImageNet/Distillation/PPLCNet_x2_5_ssld.yaml
# (Optimizer.lr.warmup_epoch: 5, Optimizer.momentum: 0.9).
WARMUP_EPOCHS = 5
MOMENTUM = 0.9

# ---- data ----
IMAGENET_ROOT = 'data/imagenet'
MINED_ROOT = 'data/in22k'  # the pool folder given to the mining tool (--pool)
MINED_LIST = 'data/ssld_mined/filelist.txt'  # the mining tool's output (--out)

data_preprocessor = dict(
    type='ClsDataPreprocessor', num_classes=1000,
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

# The stage-1 augmentation is not stated in DOC; standard RandomResizedCrop + flip. Corrupt or
# truncated files among millions of mined images are skipped (and counted), not fatal.
train_pipeline = [
    dict(type='LoadImageFromFileOrSkip'),
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
        # No label smoothing (DOC Sec. 5.3); with label_free=True the head loss is never used.
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5))),
    teacher=dict(type='TimmTeacher', model_name=TEACHER, pretrained=True),
    distill_stages=[],  # plain SSLD: logits only
    # Symmetric KL of the softmaxes at T=1, batch mean: what DOC calls the "JS divergence" loss
    # (Sec. 2.1) and PaddleClas computes as DMLLoss (PaddleClas@024ddbd ppcls/loss/dmlloss.py,
    # DMLLoss.forward). configs/ssld/ssld-ce_*.py are the soft cross-entropy recipes.
    logit_loss=dict(type='SymmetricKLLoss', temperature=1.0, loss_weight=1.0),
    label_free=True,  # no label term; labels never read (DOC Sec. 2.1)
    data_preprocessor=data_preprocessor,
)

train_dataloader = dict(
    batch_size=BATCH_PER_GPU,
    num_workers=8,  # not stated in the sources
    dataset=dict(
        type='LabeledUnlabeledDataset',
        # ImageNet-1k train merged with the mined images, 5 M in total (DOC Sec. 2.2)
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
