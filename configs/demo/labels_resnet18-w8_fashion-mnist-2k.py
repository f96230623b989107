# CPU demo, (a) labels only: the student alone on the labeled images.
# CNN student: mmpretrain ResNet_CIFAR-18 (3x3 stem, no max-pool) at width 8, `in_channels` of the base config (1).
# Stage grids at 28x28: 28, 14, 7, 4; taps s3 = layer3 (32 x 7 x 7), s4 = layer4 (64 x 4 x 4).
# Run by tools/demo.py; also runnable on its own: python tools/train.py <this file>
# (--cfg-options data_root=DIR for another image set; see _base_/fashion-mnist_label-scarce.py).
_base_ = ['./_base_/fashion-mnist_label-scarce.py']

student = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, in_channels={{_base_.in_channels}}, stem_channels=8, base_channels=8,
                  out_indices=(2, 3)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes={{_base_.num_classes}}, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))

model = dict(student, data_preprocessor={{_base_.data_preprocessor}})
train_dataloader = dict(batch_size={{_base_.batch_size}}, num_workers=0, dataset={{_base_.labeled_train_set}},
                        sampler=dict(type='InfiniteSampler', shuffle=True))
