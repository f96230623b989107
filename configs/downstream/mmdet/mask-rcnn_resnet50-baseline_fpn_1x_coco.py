# Mask R-CNN, ResNet-50-FPN, 1x, COCO 2017: the baseline row of paper Table 5 (box AP 40.2,
# mask AP 37.1; paper numbers, backbone 78.64 top-1 trained by the ScaleKD authors).
# The same model as mask-rcnn_scalekd-swin-l-resnet50_fpn_1x_coco.py, only the checkpoint differs.
# Runs with MMDetection's tools (mmdet scope); see that file for the cross-scope backbone.
_base_ = './mask-rcnn_scalekd-swin-l-resnet50_fpn_1x_coco.py'

# The paper's 78.64 ResNet-50 baseline weights are not released. For a like-for-like baseline,
# train the student recipe without distillation and extract its backbone; the default below is
# mmpretrain's public ResNetV1d-50 (77.54 top-1, URL from mmpretrain 1.2's resnet/metafile.yml).
BASELINE_CKPT = ('https://download.openmmlab.com/mmclassification/v0/resnet/'
                 'resnetv1d50_b32x8_imagenet_20210531-db14775a.pth')

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=BASELINE_CKPT, prefix='backbone.')))
