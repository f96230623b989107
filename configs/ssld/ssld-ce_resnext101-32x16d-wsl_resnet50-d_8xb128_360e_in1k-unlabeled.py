# SSLD stage 1, soft cross-entropy (PP-HGNetV2 recipe): ResNeXt101-32x16d-WSL teacher ->
# ResNet-50-D student, label-free on ImageNet-1k train + the mined images, 360 epochs.
# Recipe source (HG1): PaddlePaddle/PaddleClas@c39cddf
#   ppcls/configs/ImageNet/PPHGNetV2/PPHGNetV2_B4_ssld_stage1.yaml (PPHGNet_small teacher ->
#   PPHGNetV2_B4; mmpretrain has no PP-HGNet, so the recipe is applied to the ResNet pair that
#   PaddleClas distils with the symmetric KL in ssld_resnext101-..._32xb32_360e_in1k-unlabeled.py).
# Reported by PaddleClas for PPHGNetV2_B4, not for this pair: 83.57 top-1 after stage 2
# (PaddlePaddle/PaddleClas@b34f64e docs/zh_CN/models/ImageNet1k/PP-HGNetV2.md, Sec. 1.3).
# No number for this config was measured.
# Next: ssld-ce_resnext101-32x16d-wsl_resnet50-d_8xb128_60e_in1k-ft.py (stage 2).
# PaddleClas trains it with AMP (HG1 AMP.level: O1): add --amp to tools/train.py.
_base_ = ['../_base_/default_runtime.py']
default_scope = 'mmscalekd'

# ---- teacher: ResNeXt101_32x16d_wsl, the SSLD teacher for ResNet students ----
# (PaddlePaddle/PaddleClas@0e6b47b docs/en/advanced_tutorials/distillation/distillation_en.md
# Sec. 3.1). timm name checked with timm.list_models(pretrained=True) (timm 1.0.31).
TEACHER = 'resnext101_32x16d.fb_wsl_ig1b_ft_in1k'

# ---- schedule: HG1 ----
# 8 GPUs as in the training command of PP-HGNetV2.md Sec. 2.3.1; 128 per GPU
# (DataLoader.Train.sampler.batch_size).
NUM_GPUS = 8
BATCH_PER_GPU = 128
LR = 0.5  # Optimizer.lr.learning_rate (Cosine)
WARMUP_EPOCHS = 5  # Optimizer.lr.warmup_epoch
WEIGHT_DECAY = 2e-5  # Optimizer.regularizer.coeff (L2)
MOMENTUM = 0.9  # Optimizer.momentum
EPOCHS = 360  # Global.epochs

# ---- data ----
IMAGENET_ROOT = 'data/imagenet'
MINED_ROOT = 'data/in22k'  # the pool folder given to the mining tool (--pool)
MINED_LIST = 'data/ssld_mined/filelist.txt'  # the mining tool's output (--out)

# NormalizeImage of HG1: ImageNet mean/std (0-1 units there, 0-255 here)
data_preprocessor = dict(
    type='ClsDataPreprocessor', num_classes=1000,
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

# HG1 DataLoader.Train.transform_ops: RandCropImage 224 (bicubic, PIL), RandFlipImage,
# TimmAutoAugment 'rand-m7-mstd0.5-inc1' (timm RandAugment: 2 ops, magnitude 7 of 10, std 0.5,
# increasing). Corrupt or truncated files among the mined images are skipped (and counted).
train_pipeline = [
    dict(type='LoadImageFromFileOrSkip'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=7, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),  # BGR ImageNet mean
    dict(type='PackInputs'),
]
# HG1 DataLoader.Eval.transform_ops: ResizeImage resize_short 236 (bicubic, PIL), CropImage 224
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=236, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]

model = dict(
    type='ScaleKDDistiller',
    student=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNetV1d', depth=50),  # ResNet-50-D = PaddleClas ResNet50_vd
        neck=dict(type='GlobalAveragePooling'),
        # no label smoothing (the student learns soft labels); with label_free=True the head
        # loss is never used
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
                  loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5))),
    teacher=dict(type='TimmTeacher', model_name=TEACHER, pretrained=True),
    distill_stages=[],  # logits only
    # HG1 Loss.Train: DistillationCELoss (weight 1.0), i.e. PaddleClas CELoss with the teacher's
    # logits as label: softmax(teacher) as soft label, cross-entropy with the student, batch
    # mean (PaddlePaddle/PaddleClas@0592403 ppcls/loss/celoss.py, CELoss.forward without
    # epsilon). One-directional, unlike the symmetric KL of the older SSLD recipes.
    logit_loss=dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=1.0, mode='ce'),
    label_free=True,  # "the training process does not use real labels" (HG1)
    data_preprocessor=data_preprocessor,
)

train_dataloader = dict(
    batch_size=BATCH_PER_GPU,
    num_workers=8,  # HG1 DataLoader.Train.loader.num_workers
    dataset=dict(
        type='LabeledUnlabeledDataset',
        # HG1 cls_label_path train_list_imagenet_5M.txt: ImageNet-1k train + mined, ~5 M
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
         convert_to_iter_based=True),  # start factor not stated in HG1
    dict(type='CosineAnnealingLR', T_max=EPOCHS - WARMUP_EPOCHS, by_epoch=True,
         begin=WARMUP_EPOCHS, end=EPOCHS),
]
train_cfg = dict(by_epoch=True, max_epochs=EPOCHS, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=NUM_GPUS * BATCH_PER_GPU)
