# Variant of mask-rcnn_scalekd-swin-l-resnet50_fpn_1x_coco.py with SSLD's per-stage learning-rate
# multipliers for distilled backbones (PaddlePaddle/PaddleClas@0e6b47b docs/en/advanced_tutorials/distillation/distillation_en.md Sec. 4.1:
# for ResNet50_vd in detection, stem + 4 stages = [0.05, 0.05, 0.05, 0.1, 0.15]). Distilled mid-level features are
# easily destroyed by the full learning rate; these factors were searched by PaddleClas for
# their Faster R-CNN R50_vd setting, not for Mask R-CNN or ScaleKD students: treat them as a
# starting point. Runs with MMDetection's tools (mmdet scope).
_base_ = './mask-rcnn_scalekd-swin-l-resnet50_fpn_1x_coco.py'

# SSLD's detection multipliers for ResNet50_vd (the PaddleClas document above), in stage order.
SSLD_LR_MULT = dict(stem=0.05, layer1=0.05, layer2=0.05, layer3=0.1, layer4=0.15)

optim_wrapper = dict(
    paramwise_cfg=dict(
        # MMEngine matches a custom key as a substring of the parameter name. mmpretrain's
        # ResNetV1d names its deep stem `stem` and its stages `layer1`..`layer4`.
        custom_keys={
            f'backbone.{name}': dict(lr_mult=mult)
            for name, mult in SSLD_LR_MULT.items()
        }))
