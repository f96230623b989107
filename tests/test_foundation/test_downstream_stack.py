"""MMDetection's Mask R-CNN and MMSegmentation's UperNet build from their own packaged configs
and run on CPU: this proves mmcv's compiled ops (RoIAlign, NMS) are installed and work."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

pytestmark = pytest.mark.slow


def _packaged_config(package: str, rel_path: str) -> Config:
    module = __import__(package)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'configs', rel_path)
    assert osp.isfile(path), f'{package} wheel does not ship {rel_path}'
    return Config.fromfile(path)


def test_compiled_mmcv_ops_are_present() -> None:
    from mmcv.ops import nms, roi_align  # noqa: F401  (imports mmcv._ext)
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_mask_rcnn_r50_fpn_forward_on_cpu() -> None:
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope('mmdet')
    cfg = _packaged_config('mmdet', 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    cfg.model.backbone.init_cfg = None  # no download: random init
    cfg.model.test_cfg.rcnn.score_thr = 0.0  # make NMS and the mask branch run
    model = MODELS.build(cfg.model).eval()
    images = torch.randint(0, 255, (1, 3, 128, 160), dtype=torch.uint8).float()
    sample = DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160),
                                         scale_factor=(1.0, 1.0), pad_shape=(128, 160),
                                         batch_input_shape=(128, 160)))
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=[images[0]], data_samples=[sample]))
        results = model(**data, mode='predict')
    pred = results[0].pred_instances
    assert pred.bboxes.shape[-1] == 4
    assert len(pred.bboxes) == len(pred.masks) > 0
    assert pred.masks.shape[-2:] == (128, 160)


def test_upernet_r50_forward_on_cpu() -> None:
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    init_default_scope('mmseg')
    cfg = _packaged_config('mmseg', 'upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py')
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    cfg.model.data_preprocessor.size = None
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 96), mode='tensor')
    assert out.shape == (1, cfg.model.decode_head.num_classes, 16, 24)
    assert torch.isfinite(out).all()
