"""Scoring images with a config's teacher, on the config's own test pipeline.

What the teacher sees while mining is what it sees while distilling: the config's test pipeline
(its resize, crop and loading), the config's data preprocessor (the student's normalisation and
channel order) and the teacher adapter's own input handling
(:meth:`~mmscalekd.models.teachers.BaseTeacher.forward_targets`: re-normalisation to the
teacher's mean/std and resizing to its input size). Scores are the softmax of
``forward_targets(x, with_logits=True).logits``; the de-duplication features are the teacher's
target map, average-pooled.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
import warnings
from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

#: Scoring precisions; ``fp16`` and ``bf16`` run the teacher under ``torch.autocast``.
PRECISIONS = ('fp32', 'fp16', 'bf16')


class Scorer(Protocol):
    """What :func:`~mmscalekd.ssld.mining.mine` needs from a scorer.

    Attributes:
        pipeline (List[dict]): Transform configs, the first one a file loader
            (``LoadImageFromFile`` or a subclass), the last one ``PackInputs``.
        classes (List[str] | None): Class names, if known.
    """

    pipeline: List[dict]
    classes: Optional[List[str]]

    def score(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
        """``(probs (B, K), features (B, D) or None)`` for packed uint8 images ``(C, H, W)``."""

    def fingerprint(self) -> Dict[str, Any]:
        """JSON-able description of everything that determines the scores."""


def _canonical(obj: Any) -> Any:
    """A JSON-able copy of a config value (ConfigDicts, tuples, types -> plain JSON)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=repr))


def state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a module's state dict.

    Args:
        module (nn.Module): Any module (its tensors are read on their device, copied to CPU).

    Returns:
        str: Hex digest; equal for equal weights, whatever file or URL they came from.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().contiguous().cpu().reshape(-1)
        h.update(f'{name}|{t.dtype}|{tuple(tensor.shape)}|'.encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def _find_test_pipeline(cfg: Any) -> Tuple[List[dict], str]:
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        dataset = loader.get('dataset') if isinstance(loader, dict) else None
        if isinstance(dataset, dict) and dataset.get('pipeline') is not None:
            return [dict(t) for t in dataset['pipeline']], f'{key}.dataset.pipeline'
    if cfg.get('test_pipeline') is not None:
        return [dict(t) for t in cfg['test_pipeline']], 'test_pipeline'
    raise ValueError(
        'The config has no test pipeline (looked for test_dataloader.dataset.pipeline, '
        'val_dataloader.dataset.pipeline and test_pipeline). Mining scores images the way '
        "the config evaluates them: add a test pipeline, e.g. [dict(type='LoadImageFromFile'), "
        "dict(type='ResizeEdge', scale=256, edge='short'), dict(type='CenterCrop', "
        "crop_size=224), dict(type='PackInputs')].")


def _type_of(transform: Any) -> Any:
    from mmscalekd.registry import TRANSFORMS
    t = transform.get('type') if isinstance(transform, dict) else transform
    return TRANSFORMS.get(t) if isinstance(t, str) else t


def resolve_pipeline(pipeline: Sequence[dict], num_channels: Optional[int],
                     input_size: Tuple[int, int]) -> Tuple[List[dict], List[str]]:
    """The mining pipeline derived from a config's test pipeline.

    * A plain ``LoadImageFromFile`` becomes ``LoadImageFromFileOrSkip`` with the same
      arguments (same decoding; truncated and corrupt files are reported instead of scored).
    * A pipeline that does not read files (e.g. one over in-memory arrays, ``[PackInputs]``)
      gets ``LoadImageFromFile[OrSkip]`` (grey when the data preprocessor normalises one
      channel) and a ``Resize`` to the teacher's input size in front.

    Args:
        pipeline (Sequence[dict]): The config's test pipeline.
        num_channels (int, optional): Channels the data preprocessor normalises (1 or 3), if
            it says.
        input_size (Tuple[int, int]): ``(H, W)`` the teacher runs at.

    Returns:
        Tuple[List[dict], List[str]]: The pipeline and notes on what was changed.
    """
    from mmcv.transforms import LoadImageFromFile

    from mmscalekd.datasets.transforms import LoadImageFromFileOrSkip
    pipeline = [copy.deepcopy(dict(t)) if isinstance(t, dict) else t for t in pipeline]
    names = [getattr(_type_of(t), '__name__', repr(t)) for t in pipeline]
    if not pipeline or names[-1] != 'PackInputs':
        raise ValueError(f'the test pipeline must end with PackInputs (it gives the image '
                         f'tensors), got {names}')
    loaders = [i for i, t in enumerate(pipeline)
               if isinstance(_type_of(t), type) and issubclass(_type_of(t), LoadImageFromFile)]
    notes = []
    if loaders and loaders[0] != 0:
        raise ValueError(f'the test pipeline must read the image first; its loader is step '
                         f'{loaders[0]} of {names}')
    if not loaders:
        color = 'grayscale' if num_channels == 1 else 'color'
        h, w = input_size
        pipeline = [dict(type='LoadImageFromFileOrSkip', color_type=color),
                    dict(type='Resize', scale=(w, h))] + pipeline
        notes.append(f'the test pipeline {names} reads no files: images are loaded '
                     f"(color_type={color!r}) and resized to the teacher's input size {h}x{w}")
    elif _type_of(pipeline[0]) is LoadImageFromFile:
        pipeline[0]['type'] = 'LoadImageFromFileOrSkip'
        notes.append('LoadImageFromFile -> LoadImageFromFileOrSkip (same decoding; corrupt '
                     'and truncated files are counted instead of scored)')
    elif not issubclass(_type_of(pipeline[0]), LoadImageFromFileOrSkip):
        notes.append(f'loader {names[0]} kept as is; files it fails on are counted as '
                     'unreadable')
    return pipeline, notes


def _accepts(cls: type, name: str) -> bool:
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get('__init__')
        if init is not None and name in inspect.signature(init).parameters:
            return True
    return False


def _has_pretrained_init(cfg: Any) -> bool:
    if isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained' and cfg.get('checkpoint'):
            return True
        return any(_has_pretrained_init(v) for v in cfg.values())
    if isinstance(cfg, (list, tuple)):
        return any(_has_pretrained_init(v) for v in cfg)
    return False


def _check_teacher_weights(teacher_cfg: dict, teacher_cls: type, where: str) -> None:
    """Refuse a teacher without weights unless the config allows it (then warn)."""
    if _accepts(teacher_cls, 'allow_random_teacher'):
        return  # the adapter checks it itself
    allow = bool(teacher_cfg.pop('allow_random_teacher', False))
    if (teacher_cfg.get('checkpoint') or teacher_cfg.get('pretrained')
            or _has_pretrained_init(teacher_cfg)):
        return
    if not allow:
        raise ValueError(
            f'{where} has no weights (checkpoint=None and no pretrained=True or Pretrained '
            'init_cfg): mining would rank images by a randomly initialised teacher. Pass '
            '--checkpoint TEACHER.pth, set its checkpoint/pretrained in the config, or set '
            f'{where}.allow_random_teacher=True (tests and benchmarks only).')
    warnings.warn(f'{where}: scoring with a randomly initialised teacher '
                  '(allow_random_teacher=True); the selection is meaningless.')


class TeacherScorer:
    """Scores packed images with a teacher adapter (see the module docstring).

    Build it with :meth:`from_config`; the constructor takes built parts.

    Args:
        teacher (nn.Module): A teacher adapter (``forward_targets``), in eval mode.
        data_preprocessor (nn.Module): The config's data preprocessor.
        pipeline (List[dict]): The mining pipeline (see :func:`resolve_pipeline`).
        device (str | torch.device): Where the teacher runs. Defaults to ``'cpu'``.
        precision (str): ``'fp32'``, ``'fp16'`` (CUDA) or ``'bf16'``. Defaults to ``'fp32'``.
        classes (List[str], optional): Class names. Defaults to None.
        description (dict, optional): Config-side facts for :meth:`fingerprint` (teacher
            config, pipeline source, notes). Defaults to None.
    """

    def __init__(self,
                 teacher: nn.Module,
                 data_preprocessor: nn.Module,
                 pipeline: List[dict],
                 device: Union[str, torch.device] = 'cpu',
                 precision: str = 'fp32',
                 classes: Optional[List[str]] = None,
                 description: Optional[dict] = None) -> None:
        if not callable(getattr(teacher, 'forward_targets', None)):
            raise TypeError(f'teacher must be a teacher adapter with forward_targets, got '
                            f'{type(teacher).__name__}')
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        self.device = torch.device(device)
        if precision == 'fp16' and self.device.type != 'cuda':
            raise ValueError(f"precision='fp16' needs a CUDA device, got {self.device}; use "
                             "'bf16' or 'fp32'")
        self.precision = precision
        self.weights_sha256 = state_dict_sha256(teacher)
        self.teacher = teacher.to(self.device).eval()
        self.data_preprocessor = data_preprocessor.to(self.device).eval()
        self.pipeline = pipeline
        self.classes = list(classes) if classes is not None else None
        self.description = dict(description or {})
        self._checked = False

    # ------------------------------------------------------------------ build
    @classmethod
    def from_config(cls,
                    config: Union[str, Any],
                    checkpoint: Optional[str] = None,
                    device: Union[str, torch.device] = 'cpu',
                    precision: str = 'fp32',
                    cfg_options: Optional[dict] = None) -> 'TeacherScorer':
        """Build the teacher, its data preprocessor and the mining pipeline from a config.

        Args:
            config (str | Config): A config whose ``model`` is a distiller (its ``teacher``
                and ``data_preprocessor`` are used, wired as in training) or a teacher
                adapter (``TimmTeacher``, ``MMPretrainSwinTeacher``, ...; the top-level
                ``data_preprocessor``, if any, gives the input normalisation, else the
                images reach the adapter as raw RGB 0-255 values).
            checkpoint (str, optional): Teacher weights; replaces the config's teacher
                ``checkpoint`` (and turns off timm's ``pretrained`` download).
            device (str | torch.device): Where the teacher runs. Defaults to ``'cpu'``.
            precision (str): See :class:`TeacherScorer`. Defaults to ``'fp32'``.
            cfg_options (dict, optional): Overrides merged into the config first.

        Returns:
            TeacherScorer: The scorer.
        """
        from mmengine.config import Config

        from mmscalekd.models.teachers import BaseTeacher, student_input_convention
        from mmscalekd.registry import MODELS, build_checked
        from mmscalekd.utils import register_all_modules
        register_all_modules()
        cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        if 'model' not in cfg or not isinstance(cfg.model, dict):
            raise ValueError('the config has no model dict; give a distiller config or one '
                             "whose model is a teacher adapter (e.g. type='TimmTeacher')")
        model_cfg = copy.deepcopy(cfg.model)
        model_cls = MODELS.get(model_cfg.get('type'))
        is_teacher = isinstance(model_cls, type) and issubclass(model_cls, BaseTeacher)
        is_distiller = not is_teacher and isinstance(model_cfg.get('teacher'), dict)
        if not (is_teacher or is_distiller):
            raise TypeError(
                f'Cannot score with model type {model_cfg.get("type")!r}: mining uses a teacher '
                "adapter's forward_targets. Give a distiller config (its teacher is used) or "
                "a config whose model is a teacher adapter, e.g. model=dict(type="
                "'MMPretrainSwinTeacher', model=<your ImageClassifier>, checkpoint=...) or "
                "dict(type='TimmTeacher', model_name=..., pretrained=True).")
        teacher_cfg = model_cfg if is_teacher else model_cfg['teacher']
        where = 'model' if is_teacher else 'model.teacher'
        teacher_cls = MODELS.get(teacher_cfg.get('type'))
        if not (isinstance(teacher_cls, type) and issubclass(teacher_cls, BaseTeacher)):
            raise TypeError(f'{where}.type={teacher_cfg.get("type")!r} is not a teacher '
                            'adapter (a BaseTeacher subclass)')
        if checkpoint is not None:
            teacher_cfg['checkpoint'] = checkpoint
            if 'pretrained' in teacher_cfg:
                teacher_cfg['pretrained'] = False
        _check_teacher_weights(teacher_cfg, teacher_cls, where)

        if is_distiller:
            model = build_checked(MODELS, model_cfg, 'model')
            teacher, preprocessor = model.teacher, model.data_preprocessor
            del model
        else:
            # the adapter is built with the input convention of the preprocessor (it is given
            # at build, as the distiller does); without one, raw RGB 0-255 values reach it
            pre_cfg = cfg.get('data_preprocessor')
            if pre_cfg is not None:
                preprocessor = build_checked(MODELS, dict(pre_cfg), 'data_preprocessor')
                model_cfg.update(student_input_convention(preprocessor))
            else:
                model_cfg.update(student_mean=[0.0], student_std=[1.0],
                                 student_channel_order='rgb')
            teacher = build_checked(MODELS, model_cfg, 'model')
            if pre_cfg is None:
                own_mean = getattr(teacher, 'teacher_mean', ...)
                if own_mean is None:
                    raise ValueError(
                        'The teacher adapter states no mean/std and the config has no '
                        'data_preprocessor, so nothing says how its inputs are normalised. '
                        'Add a top-level data_preprocessor (the one used when the teacher '
                        "was trained) or the adapter's mean=/std=.")
                # raw RGB 0-255 values; the adapter normalises them with its own mean/std
                channels = own_mean.numel() if isinstance(own_mean, Tensor) else 3
                pre_cfg = dict(type='ClsDataPreprocessor', mean=[0.0] * channels,
                               std=[1.0] * channels, to_rgb=True)
                preprocessor = build_checked(MODELS, dict(pre_cfg), 'data_preprocessor')
        if (_has_pretrained_init(teacher_cfg) and not teacher_cfg.get('checkpoint')
                and not teacher_cfg.get('pretrained')):
            # weights that come through an init_cfg Pretrained are loaded by init_weights; it is
            # not called otherwise, since it would re-initialise a timm model loaded with
            # pretrained=True (timm models have their own init_weights)
            teacher.init_weights()

        mean = getattr(preprocessor, 'mean', None)
        channels = int(mean.numel()) if (mean is not None and getattr(
            preprocessor, '_enable_normalize', True)) else None
        raw_pipeline, source = _find_test_pipeline(cfg)
        pipeline, notes = resolve_pipeline(raw_pipeline, channels, tuple(teacher.input_size))
        classes = _class_names(cfg)
        description = dict(
            teacher_type=type(teacher).__name__,
            teacher_config=_canonical({k: v for k, v in teacher_cfg.items()
                                       if k not in ('checkpoint', 'pretrained',
                                                    'allow_random_teacher')}),
            checkpoint=teacher_cfg.get('checkpoint'),
            pipeline_source=source, pipeline_notes=notes)
        return cls(teacher, preprocessor, pipeline, device=device, precision=precision,
                   classes=classes, description=description)

    # ----------------------------------------------------------------- scoring
    def score(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Softmax scores and pooled, L2-normalised features of a batch.

        Args:
            inputs (Sequence[Tensor]): Packed images, uint8 ``(C, H, W)`` each, as
                ``PackInputs`` gives them (BGR for colour images).

        Returns:
            Tuple[Tensor, Tensor]: ``probs`` ``(B, K)`` and ``features`` ``(B, D)``, float32 on
            the CPU.
        """
        data = self.data_preprocessor(dict(inputs=list(inputs), data_samples=None), False)
        x = data['inputs']
        dtype = dict(fp16=torch.float16, bf16=torch.bfloat16).get(self.precision)
        try:
            with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype,
                                                        enabled=dtype is not None):
                targets = self.teacher.forward_targets(x, with_logits=True)
        except RuntimeError as err:
            if self._checked:
                raise
            raise RuntimeError(
                f'The teacher {type(self.teacher).__name__} failed on the first batch, of '
                f'shape {tuple(x.shape)} (images from the pipeline '
                f'{[t.get("type") for t in self.pipeline]}, then '
                f'{type(self.data_preprocessor).__name__}): {err}. If the channel counts '
                "differ, set color_type='grayscale' (1 channel) or 'color' (3) on the loader "
                "of the config's test pipeline.") from err
        if targets.logits is None:
            raise RuntimeError(f'{type(self.teacher).__name__}.forward_targets(x, '
                               'with_logits=True) returned no logits')
        logits = targets.logits.float()
        if self.classes is not None and len(self.classes) != logits.shape[1]:
            warnings.warn(f'the config names {len(self.classes)} classes but the teacher '
                          f'gives {logits.shape[1]} logits; class names are not used')
            self.classes = None
        self._checked = True
        feats = targets.feature.float()
        feats = feats.mean(dim=(2, 3)) if feats.dim() == 4 else feats.flatten(1)
        return (logits.softmax(dim=1).cpu(),
                torch.nn.functional.normalize(feats, dim=1).cpu())

    def fingerprint(self) -> Dict[str, Any]:
        """Everything that determines the scores: weights, teacher, preprocessing, precision."""
        pre = self.data_preprocessor

        def vec(t: Any) -> Optional[List[float]]:
            return None if t is None else [float(v) for v in torch.as_tensor(t).flatten()]

        return _canonical(dict(
            teacher=dict(
                type=self.description.get('teacher_type', type(self.teacher).__name__),
                config=self.description.get('teacher_config'),
                weights_sha256=self.weights_sha256,
                input_size=list(getattr(self.teacher, 'input_size', ()) or ()),
                mean=vec(getattr(self.teacher, 'teacher_mean', None)),
                std=vec(getattr(self.teacher, 'teacher_std', None))),
            preprocessing=dict(
                pipeline=self.pipeline,
                data_preprocessor=dict(
                    type=type(pre).__name__,
                    mean=vec(getattr(pre, 'mean', None))
                    if getattr(pre, '_enable_normalize', False) else None,
                    std=vec(getattr(pre, 'std', None))
                    if getattr(pre, '_enable_normalize', False) else None,
                    to_rgb=bool(getattr(pre, 'to_rgb', False)))),
            precision=self.precision))


def _class_names(cfg: Any) -> Optional[List[str]]:
    from mmscalekd.registry import DATASETS
    for key in ('test_dataloader', 'val_dataloader'):
        loader = cfg.get(key)
        ds = loader.get('dataset') if isinstance(loader, dict) else None
        if not isinstance(ds, dict):
            continue
        names = ds.get('classes') or (ds.get('metainfo') or {}).get('classes')
        if not names and isinstance(ds.get('type'), str):
            ds_cls = DATASETS.get(ds['type'])
            names = (getattr(ds_cls, 'METAINFO', None) or {}).get('classes')
        if names and not isinstance(names, str):
            return [str(n) for n in names]
    return None
