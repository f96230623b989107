# SSLD per-stage LR multipliers for fine-tuning a distilled backbone downstream. Source (DOC):
# PaddlePaddle/PaddleClas@0e6b47b docs/en/advanced_tutorials/distillation/distillation_en.md
# Sec. 4.1:
# distilled mid-level features are "more refined" and easily destroyed by a full LR, so the stem
# and the 4 stages get smaller LRs. Values for ResNet50_vd (DOC Sec. 4.1):
#   classification transfer: [0.1, 0.1, 0.2, 0.2, 0.3]      (stem, layer1..4)
#   detection:               [0.05, 0.05, 0.05, 0.1, 0.15]
#   MobileNetV3-Large:       [0.25, 0.25, 0.5, 0.5, 0.75]  (its 15 blocks, 3 per value)
# Weight decay should be tuned as well (DOC Sec. 4.1); the multipliers do not change it.
#
# Use from an mmpretrain / mmdet 3.x / mmseg 1.x text config (keys are matched as substrings of
# parameter names by MMEngine's DefaultOptimWrapperConstructor):
#   _base_ = [..., 'path/to/configs/ssld/finetune_stage_lr_mult.py']
#   optim_wrapper = dict(paramwise_cfg=dict(custom_keys=SSLD_DET_LR_MULT))
# (custom_keys = SSLD_CLS_LR_MULT for classification). ResNet / ResNetV1d name the stem
# `backbone.stem` (V1d, deep stem) or `backbone.conv1` + `backbone.bn1` (plain ResNet); both are
# listed, a key that matches nothing is ignored by MMEngine.
SSLD_CLS_MULTS = [0.1, 0.1, 0.2, 0.2, 0.3]  # DOC Sec. 4.1, classification transfer
SSLD_DET_MULTS = [0.05, 0.05, 0.05, 0.1, 0.15]  # DOC Sec. 4.1, detection
_STEM_KEYS = ('backbone.stem', 'backbone.conv1', 'backbone.bn1')


def _custom_keys(mults):
    keys = {k: dict(lr_mult=mults[0]) for k in _STEM_KEYS}
    keys.update({f'backbone.layer{i}': dict(lr_mult=m) for i, m in enumerate(mults[1:], 1)})
    return keys


SSLD_CLS_LR_MULT = _custom_keys(SSLD_CLS_MULTS)
SSLD_DET_LR_MULT = _custom_keys(SSLD_DET_MULTS)
del _custom_keys
