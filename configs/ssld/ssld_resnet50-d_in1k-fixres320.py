# SSLD stage 3: FixRes fine-tune of the stage-2 resnet50-d student at 320x320 with the same
# preprocessing for training and test, every weight frozen except the FC.
# Source (DOC): PaddlePaddle/PaddleClas@0e6b47b
#   docs/en/advanced_tutorials/distillation/distillation_en.md, Sec. 3.4 (after Touvron et al.,
#   "Fixing the train-test resolution discrepancy", https://arxiv.org/abs/1906.06423).
# Reported (DOC, not reproduced by us): ResNet50_vd evaluated at 320 gives 83.7, the
# FC-only fine-tune 84.0, after a stage 2 with AutoAugment and L2 2e-5 (82.99).
# Epochs, LR and loss of this step are not stated in DOC; the values below are ours.
# load_from: the stage-2 student, extracted from the distiller checkpoint with
#   python tools/model_converters/extract_student.py work_dirs/ssld_resnext101-32x16d-wsl_resnet50-d_32xb32_60e_in1k-ft/epoch_N.pth STUDENT
_base_ = ['../_base_/default_runtime.py']
default_scope = 'mmscalekd'

IMAGENET_ROOT = 'data/imagenet'
SIZE = 320  # DOC Sec. 3.4
RESIZE = 366  # short side before the centre crop, 320 / 0.875; not stated in the sources
EPOCHS = 5  # not stated in the sources
LR = 0.01  # not stated in the sources (SGD, batch 32 x GPUs)
BATCH_PER_GPU = 32
load_from = 'work_dirs/ssld_resnext101-32x16d-wsl_resnet50-d_32xb32_60e_in1k-ft/student.pth'

data_preprocessor = dict(
    type='ClsDataPreprocessor', num_classes=1000,
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)

# The same preprocessing for training and test (DOC Sec. 3.4): one pipeline, no random crop;
# the training copy skips corrupt files (an evaluation must see every image).
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=RESIZE, edge='short'),
    dict(type='CenterCrop', crop_size=SIZE),
    dict(type='PackInputs'),
]

model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNetV1d', depth=50, frozen_stages=4, norm_eval=True),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)),
    data_preprocessor=data_preprocessor,
)

train_dataloader = dict(
    batch_size=BATCH_PER_GPU, num_workers=8,
    dataset=dict(type='ImageNet', data_root=IMAGENET_ROOT, split='train',
                 pipeline=[dict(type='LoadImageFromFileOrSkip')] + pipeline[1:]),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=BATCH_PER_GPU, num_workers=8,
    dataset=dict(type='ImageNet', data_root=IMAGENET_ROOT, split='val', pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# FC = head.fc (LinearClsHead); the backbone is frozen by frozen_stages=4 + norm_eval.
paramwise = dict()
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=LR, momentum=0.9, weight_decay=0.0),  # not stated in the sources
    paramwise_cfg=paramwise)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=EPOCHS, by_epoch=True, begin=0, end=EPOCHS)]
train_cfg = dict(by_epoch=True, max_epochs=EPOCHS, val_interval=1)
val_cfg = dict()
test_cfg = dict()
