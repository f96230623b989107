"""The teacher contract of ScaleKD: a frozen network that gives targets.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).

Two capabilities, two types (``docs/teachers.md``):

* :class:`BaseTeacher` gives targets: the last stage's map ``(B, C, H, W)`` and, when the
  network has a classifier, logits ``(B, K)``;
* :class:`~mmscalekd.models.teachers.tpp_teacher.TPPTeacher` can also run its last stage on
  projected tokens (Teacher Parameter Perception, paper Sec. 3.3).

The distiller checks ``isinstance(teacher, TPPTeacher)`` for stages with ``tpp=True`` or
``query_from`` and ``teacher.has_classifier`` for a logit loss.
"""
from __future__ import annotations

import logging
import warnings
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from mmscalekd.registry import MODELS, build_checked

from ._weights import has_pretrained_init_cfg, load_teacher_checkpoint

CHANNEL_ORDERS = ('rgb', 'bgr')


class RandomTeacherWarning(UserWarning):
    """A teacher was built without weights because ``allow_random_teacher=True``."""



def student_input_convention(preprocessor: Any) -> Dict[str, Any]:
    """The input convention of a student's data preprocessor, as a teacher takes it at build.

    Args:
        preprocessor (nn.Module): A data preprocessor (mmpretrain's ``ClsDataPreprocessor`` or
            one with the same ``mean``/``std``/``to_rgb`` attributes).

    Returns:
        dict: ``student_mean``/``student_std`` (``[0.]``/``[1.]`` when the preprocessor does not
        normalise: raw pixels) and ``student_channel_order``: ``'rgb'`` with ``to_rgb=True``,
        ``'bgr'`` (``LoadImageFromFile``'s order) without, None for a preprocessor without that
        switch.
    """
    mean, std = getattr(preprocessor, 'mean', None), getattr(preprocessor, 'std', None)
    if mean is not None and getattr(preprocessor, '_enable_normalize', True):
        mean = [float(v) for v in mean.flatten()]
        std = [float(v) for v in std.flatten()]
    else:
        mean, std = [0.0], [1.0]
    to_rgb = getattr(preprocessor, 'to_rgb', None)  # mmpretrain's ClsDataPreprocessor switch
    order = None if not isinstance(to_rgb, bool) else ('rgb' if to_rgb else 'bgr')
    return dict(student_mean=mean, student_std=std, student_channel_order=order)

@dataclass
class TeacherTargets:
    """What one teacher forward gives the distiller.

    Attributes:
        feature (Tensor): Target map of the teacher's last stage, ``(B, C, H, W)``.
        logits (Tensor | None): Class logits, ``(B, K)``; None when they were not asked for
            (``forward_targets(x, with_logits=False)``).
    """

    feature: Tensor
    logits: Optional[Tensor]


def to_hw(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    """``224`` or ``(224, 224)`` -> ``(224, 224)``, validated."""
    if isinstance(size, bool):
        raise TypeError(f'{name} must be an int or a pair of ints, got {size!r}')
    if isinstance(size, int):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f'{name} must be a positive int or a pair of positive ints, '
                         f'got {size!r}')
    return int(size[0]), int(size[1])


def _channel_vector(value: Optional[Sequence[float]], name: str) -> Optional[Tensor]:
    if value is None:
        return None
    if isinstance(value, Tensor):
        value = value.detach().cpu().flatten().tolist()
    try:
        t = torch.as_tensor(value, dtype=torch.float32).flatten()
    except (TypeError, ValueError) as e:
        raise TypeError(f'{name} must be a sequence of 1 or 3 numbers, got {value!r}') from e
    if t.numel() not in (1, 3):
        raise ValueError(f'{name} must hold 1 or 3 values (one per channel), got {value!r}')
    if name.endswith('std') and bool((t <= 0).any()):
        raise ValueError(f'{name} must be positive, got {value!r}')
    return t.view(1, -1, 1, 1)


def _channel_order(value: Optional[str], name: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in CHANNEL_ORDERS:
        raise ValueError(f"{name} must be 'rgb', 'bgr' or None (same as the other side), "
                         f'got {value!r}')
    return value.lower()


def _pair(mean, std, what: str) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    if (mean is None) != (std is None):
        raise ValueError(f'give both {what}mean and {what}std or neither, got '
                         f'{what}mean={mean!r}, {what}std={std!r}')
    return _channel_vector(mean, f'{what}mean'), _channel_vector(std, f'{what}std')


def build_teacher_model(model: Union[dict, nn.Module], where: str) -> nn.Module:
    """Build ``model`` from ``MODELS`` if it is a config dict; check it is a module."""
    if isinstance(model, dict):
        model = build_checked(MODELS, model, where)
    if not isinstance(model, nn.Module):
        raise TypeError(f'{where} must be a config dict or an nn.Module, got '
                        f'{type(model).__name__}')
    return model


class BaseTeacher(BaseModule):
    """A frozen teacher that gives targets (the feature map, and logits with a classifier).

    A subclass builds and checks its network, works out its geometry, then calls this
    constructor with both; nothing of the subclass is called from here. This constructor
    checks that the teacher has weights, loads ``checkpoint``, freezes every parameter and
    puts the network in ``eval()``, where :meth:`train` keeps it unless ``train_mode=True``
    (the official code's teacher ran in train mode, stochastic depth active). The teacher
    is the one owner of its mode; the distiller's ``teacher_train_mode`` is passed here at
    build.

    **Inputs.** The teacher may have its own normalisation and channel order. The distiller
    passes the student's (``student_mean``/``student_std``/``student_channel_order``, from its
    data preprocessor) when it builds the teacher. When the teacher's ``mean``/``std`` or
    channel order differ from the student's, a batch is de-normalised with the student's
    values, its channels are reversed if the orders differ, and it is re-normalised with the
    teacher's (the idea of timm's ``DistillationTeacher.normalize_input``,
    ``timm/task/distillation.py``). A batch of another spatial size than ``input_size`` is
    resized (bilinear, antialiased).

    Args:
        model (nn.Module): The built teacher network (frozen here).
        input_size (Tuple[int, int]): Resolution the teacher runs at.
        final_dims (int): Channels of the target map.
        final_hw (Tuple[int, int]): Grid of the target map at ``input_size``.
        num_classes (int): Classes of the teacher's classifier; 0 for a network without one
            (e.g. DINOv2 or SigLIP image towers), which serves feature distillation only.
        checkpoint (str, optional): Local path (``.pth``/``.safetensors``) or URL of the
            teacher weights, loaded here. Defaults to None.
        mean (Sequence[float], optional): Per-channel mean the teacher was trained with, in
            the units of the data preprocessor (0-255 for mmpretrain). None: the student's.
            Defaults to None.
        std (Sequence[float], optional): Per-channel std, like ``mean``. Defaults to None.
        channel_order (str, optional): ``'rgb'`` or ``'bgr'``: the channel order the teacher
            was trained with. None: the student's. Defaults to None.
        student_mean (Sequence[float], optional): The student's normalisation mean, passed by
            the distiller (``[0, 0, 0]`` when its preprocessor does not normalise). None: the
            batch is already in the teacher's convention. Defaults to None.
        student_std (Sequence[float], optional): Like ``student_mean``. Defaults to None.
        student_channel_order (str, optional): The channel order of the student's batch
            (``'rgb'`` when its preprocessor has ``to_rgb=True``, else ``'bgr'``, the order
            ``LoadImageFromFile`` decodes). None: the teacher's. Defaults to None.
        train_mode (bool): Let ``train(True)`` put the teacher in train mode (the official
            code's behaviour). Parameters stay frozen either way. Defaults to False.
        allow_random_teacher (bool): Build a teacher without weights (tests, benchmarks)
            with a :class:`RandomTeacherWarning` instead of an error. Defaults to False.
        pretrained_source (str, optional): For subclasses that load weights themselves
            (timm's ``pretrained=True``): where they came from, for the log. Defaults to None.
        label (str, optional): For subclasses: the teacher's name in messages (e.g.
            ``"TimmTeacher('eva02_large_patch14_448')"``). Defaults to the class name.
        init_cfg (dict, optional): Unused by the adapter itself. Defaults to None.

    Attributes:
        final_dims (int), final_hw (Tuple[int, int]), input_size (Tuple[int, int]),
        num_classes (int): As above. ``has_classifier`` is ``num_classes > 0``.
    """

    def __init__(self,
                 model: nn.Module,
                 *,
                 input_size: Tuple[int, int],
                 final_dims: int,
                 final_hw: Tuple[int, int],
                 num_classes: int,
                 checkpoint: Optional[str] = None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 channel_order: Optional[str] = None,
                 student_mean: Optional[Sequence[float]] = None,
                 student_std: Optional[Sequence[float]] = None,
                 student_channel_order: Optional[str] = None,
                 train_mode: bool = False,
                 allow_random_teacher: bool = False,
                 pretrained_source: Optional[str] = None,
                 label: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        name = label or type(self).__name__
        self.label = name
        if not isinstance(model, nn.Module):
            raise TypeError(f'{name}: model must be an nn.Module, got {type(model).__name__}')
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise TypeError(f'{name}: checkpoint must be a path or URL string, got '
                            f'{checkpoint!r}')
        for flag, value in (('train_mode', train_mode),
                            ('allow_random_teacher', allow_random_teacher)):
            if not isinstance(value, bool):
                raise TypeError(f'{name}: {flag} must be a bool, got {value!r}')
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f'{name}: num_classes must be an int >= 0, got {num_classes!r}')
        teacher_mean, teacher_std = _pair(mean, std, '')
        s_mean, s_std = _pair(student_mean, student_std, 'student_')
        _check_units(teacher_mean, s_mean, name)

        self.model = model
        self.checkpoint = checkpoint
        self.input_size = to_hw(input_size, 'input_size')
        self.final_dims = int(final_dims)
        self.final_hw = to_hw(final_hw, 'final_hw')
        self.num_classes = int(num_classes)
        self._train_mode = train_mode
        self.channel_order = _channel_order(channel_order, 'channel_order')
        self.student_channel_order = _channel_order(student_channel_order,
                                                    'student_channel_order')
        self.register_buffer('teacher_mean', teacher_mean, persistent=False)
        self.register_buffer('teacher_std', teacher_std, persistent=False)
        self.register_buffer('student_mean', s_mean, persistent=False)
        self.register_buffer('student_std', s_std, persistent=False)

        init_cfg_source = (has_pretrained_init_cfg(model)
                           if checkpoint is None and pretrained_source is None else None)
        self.weights_source = checkpoint or pretrained_source or init_cfg_source
        if self.weights_source is None:
            message = (f'{name} has no weights (checkpoint=None, no pretrained=True, no '
                       "init_cfg of type 'Pretrained'). A distillation teacher must be trained: "
                       "set checkpoint='<local .pth/.safetensors or URL>' in the teacher "
                       'config (e.g. --cfg-options model.teacher.checkpoint=/path/to/'
                       'teacher.pth), or pretrained=True for a TimmTeacher (weights from the '
                       'hub), or allow_random_teacher=True for tests and benchmarks.')
            if not allow_random_teacher:
                raise ValueError(message)
            text = (f'{name}: random weights (allow_random_teacher=True); the '
                    'targets are those of an untrained network.')
            warnings.warn(text, RandomTeacherWarning, stacklevel=2)
            print_log(text, logger='current', level=logging.WARNING)
        if checkpoint is not None:
            load_teacher_checkpoint(self.model, checkpoint, name)
        elif pretrained_source is not None:
            print_log(f'{name}: teacher weights from {pretrained_source}',
                      logger='current')
        # init_weights() must not re-initialise loaded weights (timm models initialise
        # themselves at construction; mmpretrain models apply their init_cfg there).
        self._model_init_pending = (checkpoint is None and pretrained_source is None
                                    and isinstance(model, BaseModule))
        self.requires_grad_(False)
        self.train(False)

    @property
    def has_classifier(self) -> bool:
        """Whether the teacher gives class logits (``num_classes > 0``)."""
        return self.num_classes > 0

    @property
    def train_mode(self) -> bool:
        """Whether ``train(True)`` puts the teacher in train mode (set at build)."""
        return self._train_mode

    # ------------------------------------------------------------------ modes, weights
    def init_weights(self) -> None:
        """Initialise only a teacher whose weights come from its own ``init_cfg`` (or none)."""
        if self._model_init_pending and hasattr(self.model, 'init_weights'):
            self.model.init_weights()
        self._is_init = True

    def train(self, mode: bool = True) -> 'BaseTeacher':
        """Keep the whole teacher in eval mode unless it was built with ``train_mode=True``.

        Args:
            mode (bool): Requested mode. Defaults to True.
        """
        return super().train(mode and self._train_mode)

    # ------------------------------------------------------------------ forward
    def prepare_inputs(self, x: Tensor) -> Tensor:
        """Convert a student batch to the teacher's normalisation, channel order and size.

        Args:
            x (Tensor): Student-normalised images, ``(B, C, H, W)``.

        Returns:
            Tensor: Teacher-normalised images, ``(B, C, *input_size)``.
        """
        flip = (self.channel_order is not None and self.student_channel_order is not None
                and self.channel_order != self.student_channel_order)
        t_mean, s_mean = self.teacher_mean, self.student_mean
        if t_mean is not None and s_mean is not None:
            t_std, s_std = self.teacher_std.to(x), self.student_std.to(x)
            t_mean, s_mean = t_mean.to(x), s_mean.to(x)
            if flip or not (torch.equal(t_mean, s_mean) and torch.equal(t_std, s_std)):
                raw = x * s_std + s_mean
                if flip:
                    raw = raw.flip(1)
                x = (raw - t_mean) / t_std
        elif flip:
            # The teacher shares the student's normalisation (in its own channel order).
            x = x.flip(1)
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode='bilinear', align_corners=False,
                              antialias=True)
        return x

    def forward_targets(self, x: Tensor, with_logits: bool = True) -> TeacherTargets:
        """Target map and logits for a student batch (no ``no_grad`` inside).

        Args:
            x (Tensor): Student-normalised images, ``(B, C, H, W)``.
            with_logits (bool): Also run the classifier. The distiller passes False when no
                logit loss exists, so the teacher computes nothing unused. Defaults to True.

        Returns:
            TeacherTargets: ``feature`` ``(B, final_dims, *final_hw)`` and ``logits``
            ``(B, num_classes)`` (None when ``with_logits=False``).

        Raises:
            ValueError: ``with_logits=True`` for a teacher without a classifier.
        """
        if with_logits and not self.has_classifier:
            raise ValueError(
                f'{self.label} has no classifier (num_classes=0), so it gives no logits; '
                'call forward_targets(x, with_logits=False) (feature distillation only).')
        feature, logits = self._forward_targets(self.prepare_inputs(x), with_logits)
        return TeacherTargets(feature=feature, logits=logits if with_logits else None)

    @abstractmethod
    def _forward_targets(self, x: Tensor,
                         with_logits: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """``(feature (B, final_dims, *final_hw), logits (B, K) or None)`` of a prepared
        batch ``(B, C, *input_size)``."""

    def forward(self, x: Tensor, with_logits: bool = True) -> TeacherTargets:
        """Alias of :meth:`forward_targets`."""
        return self.forward_targets(x, with_logits)

    def shape_summary(self) -> Dict[str, object]:
        """The shapes the distiller derives connectors from."""
        return dict(final_dims=self.final_dims, final_hw=self.final_hw,
                    input_size=self.input_size, num_classes=self.num_classes)


def _check_units(teacher_mean: Optional[Tensor], student_mean: Optional[Tensor],
                 name: str) -> None:
    """Refuse a teacher mean in 0-1 units beside a student mean in 0-255 units."""
    if teacher_mean is None or student_mean is None:
        return
    if float(student_mean.abs().max()) > 2.0 and float(teacher_mean.abs().max()) <= 1.0:
        raise ValueError(
            f'{name}: mean={teacher_mean.flatten().tolist()} looks like 0-1 units while the '
            f'student normalises 0-255 pixels (mean {student_mean.flatten().tolist()}); give '
            'the teacher mean/std in 0-255 units (multiply by 255).')


def tokens_to_map(tokens: Tensor, hw: Tuple[int, int]) -> Tensor:
    """``(B, H*W, C)`` raster-order tokens -> ``(B, C, H, W)``."""
    B, N, C = tokens.shape
    if N != hw[0] * hw[1]:
        raise ValueError(f'{N} tokens do not form a {hw[0]}x{hw[1]} grid')
    return tokens.transpose(1, 2).reshape(B, C, hw[0], hw[1])


def classifier_parts(model: nn.Module) -> Tuple[nn.Module, Optional[nn.Module], nn.Module]:
    """``(backbone, neck or None, head)`` of an mmpretrain ``ImageClassifier``."""
    missing: List[str] = [n for n in ('backbone', 'head') if getattr(model, n, None) is None]
    if missing:
        raise TypeError(f'expected an mmpretrain ImageClassifier with a backbone and a head, '
                        f'got {type(model).__name__} without {missing}')
    return model.backbone, getattr(model, 'neck', None), model.head


def head_num_classes(head: nn.Module, where: str) -> int:
    """``num_classes`` of an mmpretrain classification head."""
    num = getattr(head, 'num_classes', None)
    if isinstance(num, bool) or not isinstance(num, int) or num <= 0:
        raise TypeError(f'{where}: the head {type(head).__name__} has no positive num_classes '
                        f'(got {num!r}); an mmpretrain teacher needs a classification head')
    return num


def head_logits(neck: Optional[nn.Module], head: nn.Module, feats: Tuple[Tensor, ...]) -> Tensor:
    """Logits of an mmpretrain neck + head on a backbone output tuple (no loss)."""
    if neck is not None:
        feats = neck(feats)
    return head(feats)
