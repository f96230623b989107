# UperNet, ResNet-50, 512x512, 160k, ADE20K: the baseline row of paper Table 6 (42.37 mIoU; paper
# number, backbone 78.64 top-1 trained by the ScaleKD authors). Same model as
# upernet_scalekd-swin-l-resnet50_4xb4-160k_ade20k-512x512.py; only the checkpoint differs.
# Runs with MMSegmentation's tools (mmseg scope).
_base_ = './upernet_scalekd-swin-l-resnet50_4xb4-160k_ade20k-512x512.py'

# The paper's baseline weights are not released; train the student recipe without distillation
# for a like-for-like baseline. Default: mmpretrain's public ResNetV1d-50 (77.54 top-1; URL from
# mmpretrain 1.2's resnet/metafile.yml).
BASELINE_CKPT = ('https://download.openmmlab.com/mmclassification/v0/resnet/'
                 'resnetv1d50_b32x8_imagenet_20210531-db14775a.pth')

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=BASELINE_CKPT, prefix='backbone.')))
