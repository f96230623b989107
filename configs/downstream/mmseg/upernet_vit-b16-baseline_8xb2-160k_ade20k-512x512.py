# UperNet, ViT-B/16 + multi-level neck, 512x512, 160k, ADE20K: the baseline row of paper Table 6
# (46.75 mIoU; paper number, backbone 81.80 top-1). Same model as
# upernet_scalekd-swin-l-vit-b16_8xb2-160k_ade20k-512x512.py; only the checkpoint differs.
# Runs with MMSegmentation's tools (mmseg scope).
_base_ = './upernet_scalekd-swin-l-vit-b16_8xb2-160k_ade20k-512x512.py'

# mmpretrain's DeiT-B (81.76 top-1; URL from mmpretrain 1.2's deit/metafile.yml, model
# deit-base_16xb64_in1k). The paper's 81.80 baseline weights are not released.
BASELINE_CKPT = ('https://download.openmmlab.com/mmclassification/v0/deit/'
                 'deit-base_pt-16xb64_in1k_20220216-db63c16c.pth')

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=BASELINE_CKPT, prefix='backbone.')))
