# Mask R-CNN, Swin-T-FPN, 1x, COCO 2017: the baseline row of paper Table 5 (box AP 42.7, mask AP
# 39.3; paper numbers). Same model as mask-rcnn_scalekd-swin-l-swin-t_fpn_1x_coco.py; only the
# backbone checkpoint differs. Runs with MMDetection's tools (mmdet scope).
_base_ = './mask-rcnn_scalekd-swin-l-swin-t_fpn_1x_coco.py'

# mmpretrain's Swin-T (81.18 top-1, equal to the paper's Swin-T baseline; URL from mmpretrain
# 1.2's swin_transformer/metafile.yml, model swin-tiny_16xb64_in1k).
BASELINE_CKPT = ('https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
                 'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth')

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=BASELINE_CKPT, prefix='backbone.')))
