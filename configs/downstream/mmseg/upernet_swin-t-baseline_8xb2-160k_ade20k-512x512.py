# UperNet, Swin-T, 512x512, 160k, ADE20K: the baseline row of paper Table 6 (44.41 mIoU; paper
# number). Same model as upernet_scalekd-swin-l-swin-t_8xb2-160k_ade20k-512x512.py; only the
# checkpoint differs. Runs with MMSegmentation's tools (mmseg scope).
_base_ = './upernet_scalekd-swin-l-swin-t_8xb2-160k_ade20k-512x512.py'

# mmpretrain's Swin-T (81.18 top-1, the paper's Swin-T baseline; URL from mmpretrain 1.2's
# swin_transformer/metafile.yml, model swin-tiny_16xb64_in1k).
BASELINE_CKPT = ('https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
                 'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth')

model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=BASELINE_CKPT, prefix='backbone.')))
