# CPU demo, (b) logit KD: soft-target CE at T=1 (official ScaleKD KD), label term on the labeled images only.
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

teacher = dict(
    type='MMPretrainViTTeacher',
    model=dict(
        type='ImageClassifier',
        backbone=dict(
            type='VisionTransformer',
            arch=dict(embed_dims=128, num_layers=4, num_heads=4, feedforward_channels=512),
            img_size={{_base_.img_size}}, patch_size=7, in_channels={{_base_.in_channels}},
            out_type='cls_token', final_norm=True),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes={{_base_.num_classes}}, in_channels=128)),
    # Trained by tools/demo.py with configs/demo/vit-teacher_fashion-mnist.py; the demo uses it
    # only when the data fingerprint in its meta matches the data, and trains one otherwise.
    checkpoint='checkpoints/demo/vit-teacher_fashion-mnist.pth',
    tpp_blocks=1)  # TPP runs the teacher's last block + final norm (4x4 tokens, 128-d)

model = dict(
    type='ScaleKDDistiller',
    student=student,
    teacher=teacher,
    distill_stages=[],
    # Official ScaleKD KD: T = 1, alpha_kd = 0.5, label term weighted 1 - alpha_kd
    # (deep-optimization/ScaleKD@ee56c7e configs/distillers/advanced_training_strategy/
    # swin-l_distill_res50_img_s3_s4.py:60-61).
    logit_loss=dict(type='SoftTargetKDLoss', temperature=1.0, loss_weight=0.5),
    label_loss_weight=0.5,
    partial_labels=True,  # the pool has no labels: the label term uses the labeled samples only
    data_preprocessor={{_base_.data_preprocessor}})
train_dataloader = dict(batch_size={{_base_.batch_size}}, num_workers=0, dataset={{_base_.mixed_train_set}},
                        sampler=dict(type='InfiniteSampler', shuffle=True))
