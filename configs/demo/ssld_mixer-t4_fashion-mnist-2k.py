# CPU demo, (d) SSLD: symmetric KL to the teacher's predictions on all images, no label anywhere.
# MLP student: a reduced MLP-Mixer (patch 4 -> 7x7 tokens, width 64, 4 blocks) with ScaleKD's taps:
# s3 = block 2, s4 = block 3 before the final norm (both 64 x 7 x 7), plus the normed output for the head.
# Run by tools/demo.py; also runnable on its own: python tools/train.py <this file>
# (--cfg-options data_root=DIR for another image set; see _base_/fashion-mnist_label-scarce.py).
_base_ = ['./_base_/fashion-mnist_label-scarce.py']

student = dict(
    type='ImageClassifier',
    backbone=dict(type='MlpMixerTaps', arch=dict(embed_dims=64, num_layers=4,
                  tokens_mlp_dims=32, channels_mlp_dims=256), img_size={{_base_.img_size}},
                  patch_size=4, patch_cfg=dict(in_channels={{_base_.in_channels}}),
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
    logit_loss=dict(type='SymmetricKLLoss', temperature=1.0, loss_weight=1.0),
    label_loss_weight=0.0,
    label_free=True,
    data_preprocessor={{_base_.data_preprocessor}})
train_dataloader = dict(batch_size={{_base_.batch_size}}, num_workers=0, dataset={{_base_.unlabeled_train_set}},
                        sampler=dict(type='InfiniteSampler', shuffle=True))
