# CPU demo, (a) labels only: the student alone on the labeled images.
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

model = dict(student, data_preprocessor={{_base_.data_preprocessor}})
train_dataloader = dict(batch_size={{_base_.batch_size}}, num_workers=0, dataset={{_base_.labeled_train_set}},
                        sampler=dict(type='InfiniteSampler', shuffle=True))
