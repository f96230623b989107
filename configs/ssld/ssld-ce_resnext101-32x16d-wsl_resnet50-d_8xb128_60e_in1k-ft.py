# SSLD stage 2, soft cross-entropy (PP-HGNetV2 recipe): fine-tune the stage-1 ResNet-50-D
# student on ImageNet-1k only at 1/100 of the stage-1 LR, 60 epochs, the teacher's soft labels
# still the only target.
# Recipe source (HG2): PaddlePaddle/PaddleClas@34d76a6
#   ppcls/configs/ImageNet/PPHGNetV2/PPHGNetV2_B4_ssld_stage2.yaml (PPHGNet_small ->
#   PPHGNetV2_B4 there; see the stage-1 config for why the ResNet pair).
# Reported by PaddleClas for PPHGNetV2_B4, not for this pair: 83.57 top-1 after this stage
# (PaddlePaddle/PaddleClas@b34f64e docs/zh_CN/models/ImageNet1k/PP-HGNetV2.md, Sec. 1.3).
# No number for this config was measured.
# load_from is the stage-1 distiller checkpoint (same model, so every key matches; HG2 loads
# the stage-1 student, Arch.models.Student.pretrained).
# PaddleClas trains it with AMP (HG2 AMP.level: O1): add --amp to tools/train.py.
_base_ = ['../_base_/default_runtime.py']
default_scope = 'mmscalekd'

# ---- teacher: ResNeXt101_32x16d_wsl, the SSLD teacher for ResNet students ----
# (PaddlePaddle/PaddleClas@0e6b47b docs/en/advanced_tutorials/distillation/distillation_en.md
# Sec. 3.1). timm name checked with timm.list_models(pretrained=True) (timm 1.0.31).
TEACHER = 'resnext101_32x16d.fb_wsl_ig1b_ft_in1k'

# ---- schedule: HG2 (HG1 for what HG2 repeats) ----
# 8 GPUs as in the training command of PP-HGNetV2.md Sec. 2.3.1; 128 per GPU
# (DataLoader.Train.sampler.batch_size).
NUM_GPUS = 8
BATCH_PER_GPU = 128
LR = 0.005  # Optimizer.lr.learning_rate: "stage2 should reduce learning rate", 1/100 of 0.5
WARMUP_EPOCHS = 5  # Optimizer.lr.warmup_epoch
WEIGHT_DECAY = 2e-5  # Optimizer.regularizer.coeff (L2)
MOMENTUM = 0.9  # Optimizer.momentum
EPOCHS = 60  # Global.epochs

# ---- data ----
IMAGENET_ROOT = 'data/imagenet'
STAGE1 = ('work_dirs/ssld-ce_resnext101-32x16d-wsl_resnet50-d_8xb128_360e_in1k-unlabeled/'
          'epoch_360.pth')

# NormalizeImage of HG2: ImageNet mean/std (0-1 units there, 0-255 here)
data_preprocessor = dict(
    type='ClsDataPreprocessor', num_classes=1000,
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

# HG2 DataLoader.Train.transform_ops (as HG1): RandCropImage 224 (bicubic, PIL), RandFlipImage,
# TimmAutoAugment 'rand-m7-mstd0.5-inc1' (timm RandAugment: 2 ops, magnitude 7 of 10, std 0.5,
# increasing). Corrupt or truncated files are skipped (and counted).
train_pipeline = [
    dict(type='LoadImageFromFileOrSkip'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=7, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),  # BGR ImageNet mean
    dict(type='PackInputs'),
]
# HG2 DataLoader.Eval.transform_ops: ResizeImage resize_short 236 (bicubic, PIL), CropImage 224
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
    # HG2 Loss.Train: DistillationCELoss (weight 1.0), i.e. PaddleClas CELoss with the teacher's
    # logits as label: softmax(teacher) as soft label, cross-entropy with the student, batch
    # mean (PaddlePaddle/PaddleClas@0592403 ppcls/loss/celoss.py, CELoss.forward without
    # epsilon). One-directional, unlike the symmetric KL of the older SSLD recipes.
    logit_loss=dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=1.0, mode='ce'),
    label_free=True,  # "the training process does not use real labels" (HG2)
    data_preprocessor=data_preprocessor,
)

train_dataloader = dict(
    batch_size=BATCH_PER_GPU,
    num_workers=8,  # HG2 DataLoader.Train.loader.num_workers
    # HG2 cls_label_path ILSVRC2012/train_list.txt: ImageNet-1k only; its labels are present
    # but a label_free distiller never reads them
    dataset=dict(type='ImageNet', data_root=IMAGENET_ROOT, split='train', pipeline=train_pipeline),
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
         convert_to_iter_based=True),  # start factor not stated in HG2
    dict(type='CosineAnnealingLR', T_max=EPOCHS - WARMUP_EPOCHS, by_epoch=True,
         begin=WARMUP_EPOCHS, end=EPOCHS),
]
train_cfg = dict(by_epoch=True, max_epochs=EPOCHS, val_interval=1)
load_from = STAGE1
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=NUM_GPUS * BATCH_PER_GPU)
