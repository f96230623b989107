"""``TimmTeacher``: a frozen timm model built by name; the family class is picked from it.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).

Each timm family is one class in its own file (``timm_*_teacher.py``), registered here with
:func:`register_timm_family`; ``docs/teachers.md`` says how to add one.
"""
from __future__ import annotations

import importlib
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple, Type, Union

import torch.nn as nn

from mmscalekd.registry import MODELS

from ._weights import TeacherDownloadError
from .base_teacher import BaseTeacher, to_hw

_FAMILIES: List[Type['TimmTeacher']] = []


def register_timm_family(cls: Type['TimmTeacher']) -> Type['TimmTeacher']:
    """Class decorator: make a :class:`TimmTeacher` family class selectable by name.

    The class states ``family`` (a short name), ``timm_modules`` (the ``timm.models``
    submodules whose models it takes) and ``timm_class`` (the dotted timm class it expects).
    At most one family is the ``fallback`` for models of any other module.
    """
    if not (isinstance(cls, type) and issubclass(cls, TimmTeacher)) or cls is TimmTeacher:
        raise TypeError(f'register_timm_family takes a TimmTeacher subclass, got {cls!r}')
    if any(f.family == cls.family for f in _FAMILIES):
        raise ValueError(f'a timm teacher family named {cls.family!r} is already registered')
    if cls.fallback and any(f.fallback for f in _FAMILIES):
        raise ValueError('only one timm teacher family can be the fallback')
    _FAMILIES.append(cls)
    return cls


def timm_families() -> Tuple[Type['TimmTeacher'], ...]:
    """The registered family classes, in registration order."""
    return tuple(_FAMILIES)


def _supported() -> str:
    return '; '.join(f'{f.family}: {f.description}' for f in _FAMILIES)


def timm_family_for(model_name: Any) -> Type['TimmTeacher']:
    """The family class that takes the timm model ``model_name`` (with or without a tag).

    Decided by the ``timm.models`` submodule that registers the name; the family checks the
    built model's class.

    Raises:
        TypeError: ``model_name`` is not a string.
        ValueError: timm does not know the name.
    """
    import timm
    if not isinstance(model_name, str):
        raise TypeError(f'TimmTeacher: model_name must be a timm model name (str), got '
                        f'{model_name!r}')
    if not timm.is_model(model_name):
        close = timm.list_models(f'*{model_name.split(".")[0][:12]}*')[:5]
        raise ValueError(f'TimmTeacher: unknown timm model {model_name!r}'
                         f'{f" (close names: {close})" if close else ""}. Supported '
                         f'families: {_supported()}.')
    module = timm.models.model_entrypoint(model_name).__module__.rsplit('.', 1)[-1]
    for family in _FAMILIES:
        if module in family.timm_modules:
            return family
    for family in _FAMILIES:
        if family.fallback:
            return family
    raise ValueError(f'TimmTeacher: no family takes {model_name!r} (timm module {module!r}); '
                     f'supported families: {_supported()}.')


@MODELS.register_module()
class TimmTeacher(BaseTeacher):
    """Frozen timm classifier created by name; the teacher of its family is returned.

    ``TimmTeacher(model_name=...)`` builds an instance of the family class registered for
    the model's timm module (``docs/teachers.md`` lists them): plain ViTs (``vit_*``,
    ``deit_*``, DINOv2, CLIP, SigLIP), BEiT/BEiTv2 (``beit*``), EVA/EVA-02 (``eva*``), Swin,
    ConvNeXt (all teachers with TPP, :class:`TPPTeacher`), and any other timm CNN whose
    ``forward_features`` gives a ``(B, C, H, W)`` map (targets and logits only, no TPP).

    ``mean``/``std`` default to the model's ``pretrained_cfg`` scaled to 0-255, the units of
    mmpretrain's data preprocessor, and ``channel_order`` to ``'rgb'`` (timm models are
    trained on RGB); a BGR student batch is converted at the teacher's input.

    Args:
        model_name (str): timm model name, with a pretrained tag for ``pretrained=True``,
            e.g. ``'eva02_large_patch14_448.mim_m38m_ft_in22k_in1k'``.
        pretrained (bool): Let timm fetch the weights of the tag (Hugging Face hub; a local
            file through ``model_kwargs=dict(pretrained_cfg_overlay=dict(file=...))``).
            Defaults to False.
        checkpoint (str, optional): Local path (``.pth``/``.safetensors``) or URL of a timm
            state dict, instead of ``pretrained``. Defaults to None.
        model_kwargs (dict, optional): Extra ``timm.create_model`` kwargs (``img_size``,
            ``depth``, ``num_classes``, ...). Defaults to None.
        tpp_blocks (int, optional): Plain ViTs only: the final blocks that form the last
            stage (``docs/teachers.md``, "Stage taps"). Defaults to 2 there.
        mean (Sequence[float], optional): See :class:`BaseTeacher`.
        std (Sequence[float], optional): See :class:`BaseTeacher`.
        channel_order (str): See :class:`BaseTeacher`. Defaults to ``'rgb'``.
        input_size (int | Sequence[int], optional): Plain ViTs and Swin: must equal the
            ``img_size`` the model was built for (set it through ``model_kwargs``) unless it
            has ``dynamic_img_size``; free for ConvNeXt and CNNs. Defaults to the model's.
        **kwargs: ``student_mean``, ``student_std``, ``student_channel_order``,
            ``train_mode``, ``allow_random_teacher``, ``init_cfg`` (see
            :class:`BaseTeacher`).

    Attributes:
        family (str): The family that took the model (``'vit'``, ``'beit'``, ...).
        model_name (str): As given.
    """

    family: ClassVar[str] = ''
    description: ClassVar[str] = ''
    timm_modules: ClassVar[Tuple[str, ...]] = ()
    timm_class: ClassVar[Optional[str]] = None
    fallback: ClassVar[bool] = False

    def __new__(cls, *args: Any, **kwargs: Any) -> 'TimmTeacher':
        if cls is not TimmTeacher:  # a family class built directly (or copied/unpickled)
            return super().__new__(cls)
        model_name = kwargs['model_name'] if 'model_name' in kwargs else (
            args[0] if args else None)
        return super().__new__(timm_family_for(model_name))

    @classmethod
    def expected_class(cls) -> Optional[type]:
        """The timm class of the family (imported on first use)."""
        if cls.timm_class is None:
            return None
        module, name = cls.timm_class.rsplit('.', 1)
        return getattr(importlib.import_module(module), name)


class TimmBuild:
    """A timm model created for a family, with the :class:`BaseTeacher` options it implies.

    Args:
        family (type): The family class (its ``timm_class`` is checked).
        model_name (str): timm model name.
        pretrained, checkpoint, model_kwargs, mean, std, channel_order, input_size: See
            :class:`TimmTeacher`.
        **kwargs: The remaining :class:`BaseTeacher` options, passed on.

    Attributes:
        model (nn.Module): The timm model.
        input_size (Tuple[int, int] | None): The requested input size (None: the model's).
        label (str): ``"TimmTeacher('<model_name>')"``.
    """

    def __init__(self, family: Type[TimmTeacher], model_name: str, pretrained: bool = False,
                 checkpoint: Optional[str] = None, model_kwargs: Optional[dict] = None,
                 mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                 channel_order: Optional[str] = 'rgb',
                 input_size: Optional[Union[int, Sequence[int]]] = None,
                 **kwargs: Any) -> None:
        import timm
        self.label = f'TimmTeacher({model_name!r})'
        if not isinstance(pretrained, bool):
            raise TypeError(f'{self.label}: pretrained must be a bool, got {pretrained!r}')
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise TypeError(f'{self.label}: model_kwargs must be a dict, got {model_kwargs!r}')
        if pretrained and checkpoint is not None:
            raise ValueError(f'{self.label}: give pretrained=True (timm fetches the weights of '
                             f'the tag) or checkpoint={checkpoint!r}, not both')
        model_kwargs = dict(model_kwargs or {})
        try:
            model = timm.create_model(model_name, pretrained=pretrained, **model_kwargs)
        except OSError as e:  # hub / URL unreachable, file missing
            if not pretrained:
                raise
            raise TeacherDownloadError(
                f'{self.label}: timm could not fetch the pretrained weights of {model_name!r} '
                f'({type(e).__name__}: {e}); no network seems reachable from here. Download '
                'them where a network is available, then pass the file: pretrained=True with '
                "model_kwargs=dict(pretrained_cfg_overlay=dict(file='/path/to/"
                "model.safetensors')), or pretrained=False with "
                '--cfg-options model.teacher.checkpoint=/path/to/file.') from e
        expected = family.expected_class()
        if expected is not None and not isinstance(model, expected):
            raise ValueError(f'{self.label} is a {type(model).__name__}, not a '
                             f'{expected.__name__} that the {family.family!r} teacher family '
                             f'takes; supported families: {_supported()}.')
        if mean is None and std is None:
            cfg = getattr(model, 'pretrained_cfg', None) or {}
            if 'mean' in cfg and 'std' in cfg:
                mean = [255.0 * m for m in cfg['mean']]
                std = [255.0 * s for s in cfg['std']]
        self.model = model
        self.input_size = to_hw(input_size, 'input_size') if input_size is not None else None
        self._options: Dict[str, Any] = dict(
            kwargs, checkpoint=checkpoint, mean=mean, std=std, channel_order=channel_order,
            num_classes=int(getattr(model, 'num_classes', 0) or 0), label=self.label,
            pretrained_source=(f'timm pretrained weights of {model_name!r}' if pretrained
                               else None))

    def options(self, input_size: Tuple[int, int], **geometry: Any) -> Dict[str, Any]:
        """The :class:`BaseTeacher` keyword arguments, with the family's geometry."""
        return dict(self._options, input_size=input_size, **geometry)

    def own_input_size(self) -> Tuple[int, int]:
        """The input size the model was built for (``patch_embed.img_size``, else the
        ``pretrained_cfg``'s)."""
        pe = getattr(self.model, 'patch_embed', None)
        if pe is not None and getattr(pe, 'img_size', None) is not None:
            return int(pe.img_size[0]), int(pe.img_size[1])
        size = (getattr(self.model, 'pretrained_cfg', None) or {}).get('input_size')
        if size is None:
            raise ValueError(f'{self.label}: cannot tell the input size of the model; pass '
                             'input_size.')
        return int(size[-2]), int(size[-1])

    def fixed_input_size(self) -> Tuple[int, int]:
        """The input size of a model whose grid is fixed at construction (ViT, Swin)."""
        own = self.own_input_size()
        if self.input_size is None or self.input_size == own:
            return own
        if getattr(self.model, 'dynamic_img_size', False):
            return self.input_size
        raise ValueError(f'{self.label}: input_size {self.input_size} differs from the size '
                         f'{own} that the model was built for; pass '
                         'model_kwargs=dict(img_size=...) instead.')


def check_tpp_blocks(tpp_blocks: Optional[int], blocks: nn.ModuleList, label: str) -> int:
    """Validate ``tpp_blocks`` of a plain ViT (default 2)."""
    if tpp_blocks is None:
        tpp_blocks = 2
    if not isinstance(tpp_blocks, int) or isinstance(tpp_blocks, bool) or tpp_blocks < 1:
        raise ValueError(f'{label}: tpp_blocks must be a positive int, got {tpp_blocks!r}')
    if tpp_blocks > len(blocks):
        raise ValueError(f'{label}: tpp_blocks={tpp_blocks} exceeds the number of blocks '
                         f'({len(blocks)})')
    return tpp_blocks


def refuse_tpp_blocks(tpp_blocks: Optional[int], label: str, family: str) -> None:
    """Families whose last stage is a fixed stage take no ``tpp_blocks``."""
    if tpp_blocks is not None:
        raise ValueError(f'{label}: tpp_blocks={tpp_blocks!r} applies to plain ViTs only; the '
                         f'{family} family re-runs its whole last stage. Remove tpp_blocks.')
