"""The typed record of one ScaleKD distillation stage and its derived connector geometry.

A stage in a config states only its choices (which student output, TPP or not, where its queries
come from, the connector's and the loss's own options). The connector's shapes follow from the
student and the teacher: :func:`derive_geometry` computes them from the student's dry-run output
and the teacher's token space, and checks any value the config still states.

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

__all__ = ['DistillStage', 'StageGeometry', 'FrozenConfig', 'GEOMETRY_KEYS', 'STAGE_KEYS',
           'TEACHER_SPACES', 'parse_stages', 'derive_geometry']

#: Connector arguments that the distiller derives (a config may still state them: checked).
GEOMETRY_KEYS = ('in_channels', 'student_hw', 'embed_dims', 'query_hw', 'learnable_query')
#: Keys a stage dict accepts.
STAGE_KEYS = ('name', 'student_index', 'tpp', 'query_from', 'connector', 'loss')
_REQUIRED_KEYS = ('name', 'student_index', 'connector', 'loss')
#: Teacher spaces a connector can map into: the input of the teacher's last stage (TPP) or the
#: teacher's final map.
TEACHER_SPACES = {'tpp': "teacher's TPP input (tpp_dims, tpp_hw)",
                  'final': "teacher's final map (final_dims, final_hw)"}


# ----------------------------------------------------------------------- frozen configs
class _FrozenList(tuple):
    """A list inside a :class:`FrozenConfig`: immutable, and a list again when thawed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(list(self))


def _freeze(value: Any) -> Any:
    if isinstance(value, FrozenConfig):
        return value
    if isinstance(value, Mapping):
        return FrozenConfig(value)
    if isinstance(value, list):
        return _FrozenList(_freeze(v) for v in value)
    if isinstance(value, tuple) and not isinstance(value, _FrozenList):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, FrozenConfig):
        return value.to_dict()
    if isinstance(value, _FrozenList):
        return [_thaw(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


class FrozenConfig(Mapping):
    """A read-only, hashable copy of a (nested) config dict.

    Nested dicts become ``FrozenConfig`` and lists become tuples; :meth:`to_dict` gives back
    plain, fresh dicts and lists (what ``MODELS.build`` takes). Pickles and deep-copies (EMA
    and checkpoints copy the model that holds it).

    Args:
        data (Mapping): The config, e.g. ``dict(type='DualViewMimicLoss', alpha=(0.08, 0.06))``.
    """

    __slots__ = ('_data', )

    def __init__(self, data: Mapping) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(f'FrozenConfig takes a mapping, got {data!r}')
        object.__setattr__(self, '_data', {k: _freeze(v) for k, v in data.items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f'a FrozenConfig is read-only; use to_dict() for a mutable copy '
                             f'(tried to set {name!r})')

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self):
        return FrozenConfig, (self.to_dict(), )

    def to_dict(self) -> Dict[str, Any]:
        """A fresh, mutable copy (nested dicts and lists included)."""
        return {k: _thaw(v) for k, v in self._data.items()}


# ----------------------------------------------------------------------- records
@dataclass(frozen=True)
class StageGeometry:
    """The connector shapes of one stage, as derived at build.

    Attributes:
        student_shape (tuple[int, ...]): The student output the stage taps, without the batch:
            ``(C, H, W)`` for a map or ``(N, C)`` for tokens, from the dry run at
            ``input_size``.
        input_size (tuple[int, int]): Student resolution of the dry run.
        teacher_space (str): ``'tpp'`` (the input of the teacher's last stage) or ``'final'``
            (the teacher's final map).
        in_channels (int): Student channels ``C_s``.
        student_hw (tuple[int, int]): Student grid ``(H_s, W_s)``.
        embed_dims (int): Teacher width ``C_t`` of ``teacher_space``.
        query_hw (tuple[int, int]): Teacher grid of ``teacher_space``.
        learnable_query (bool): True unless the stage takes its queries from another stage.
        given (tuple[str, ...]): The geometry keys the config stated (each checked equal to
            the derived value).
    """

    student_shape: Tuple[int, ...]
    input_size: Tuple[int, int]
    teacher_space: str
    in_channels: int
    student_hw: Tuple[int, int]
    embed_dims: int
    query_hw: Tuple[int, int]
    learnable_query: bool
    given: Tuple[str, ...] = ()

    def connector_kwargs(self) -> Dict[str, Any]:
        """The derived connector arguments, keyed as :data:`GEOMETRY_KEYS`."""
        return {key: getattr(self, key) for key in GEOMETRY_KEYS}


@dataclass(frozen=True)
class DistillStage:
    """One distillation stage: its choices, and after build its views and geometry.

    Built from a config dict by :meth:`from_config` (through :func:`parse_stages`), and
    completed by the distiller with :meth:`resolved`. Immutable: ``dataclasses.replace`` or
    :meth:`resolved` give a new record.

    Attributes:
        name (str): Unique identifier; connectors are ``connectors['<name>_<view>']`` and loss
            keys ``distill.loss_<name>_<view>``.
        student_index (int): Index into the student backbone's outputs.
        connector (FrozenConfig): The connector's config as written (choices such as
            ``num_heads``; derived keys only when stated, then checked).
        loss (FrozenConfig): The stage loss's config (``DualViewMimicLoss``).
        tpp (bool): The connector maps into the teacher's TPP input space and its outputs go
            through the teacher's last stage (Teacher Parameter Perception).
        query_from (str | None): An earlier ``tpp`` stage whose TPP outputs, view by view, are
            this stage's connector queries; None for learnable queries.
        views (tuple[str, ...]): Active views of the loss (``'spatial'``, ``'freq'``); empty
            until resolved.
        geometry (StageGeometry | None): The derived connector shapes; None until resolved.
    """

    name: str
    student_index: int
    connector: FrozenConfig
    loss: FrozenConfig
    tpp: bool = False
    query_from: Optional[str] = None
    views: Tuple[str, ...] = ()
    geometry: Optional[StageGeometry] = None

    @classmethod
    def from_config(cls, cfg: Mapping,
                    earlier: Optional[Mapping[str, 'DistillStage']] = None) -> 'DistillStage':
        """Validate one stage dict.

        Args:
            cfg (Mapping): ``dict(name=..., student_index=..., tpp=..., query_from=...,
                connector=dict(type=...), loss=dict(type=...))``.
            earlier (Mapping[str, DistillStage]): The stages before it, by name (for
                ``query_from`` and unique names). Defaults to None (no earlier stage).

        Raises:
            TypeError, ValueError: Naming the stage, the bad key and value and what is
                accepted.
        """
        earlier = {} if earlier is None else earlier
        if not isinstance(cfg, Mapping):
            raise TypeError(f'each distill stage must be a dict, got {cfg!r}')
        label = cfg.get('name')
        unknown = sorted(set(cfg) - set(STAGE_KEYS))
        if unknown:
            raise ValueError(f'distill stage {label!r} has unknown keys {unknown}; accepted: '
                             f'{sorted(STAGE_KEYS)}')
        for key in _REQUIRED_KEYS:
            if key not in cfg:
                raise ValueError(f'distill stage {label!r} misses {key!r}; a stage needs '
                                 f'{list(_REQUIRED_KEYS)} (and optionally tpp, query_from)')
        name = cfg['name']
        if not isinstance(name, str) or not name.isidentifier() or name in earlier:
            raise ValueError(f'stage name {name!r} must be a unique identifier (used in the '
                             f'connector and loss keys); earlier stages: {sorted(earlier)}')
        index = cfg['student_index']
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f'stage {name!r}: student_index must be an int (an index into the '
                            f"student backbone's outputs), got {index!r}")
        tpp = cfg.get('tpp', False)
        if not isinstance(tpp, bool):
            raise TypeError(f'stage {name!r}: tpp must be True or False, got {tpp!r}')
        src = cfg.get('query_from')
        if src is not None:
            if not isinstance(src, str):
                raise TypeError(f'stage {name!r}: query_from must be the name of an earlier '
                                f'stage or None, got {src!r}')
            if tpp:
                raise ValueError(f'stage {name!r}: tpp=True and query_from={src!r} cannot be '
                                 'combined (a TPP stage has learnable queries and produces '
                                 'the queries of later stages)')
            if src not in earlier:
                raise ValueError(f'stage {name!r}: query_from={src!r} names no earlier stage; '
                                 f'earlier stages: {sorted(earlier)}')
            if not earlier[src].tpp:
                raise ValueError(f'stage {name!r}: query_from={src!r} names a stage without '
                                 'tpp=True; only TPP stages produce queries')
        for key in ('connector', 'loss'):
            value = cfg[key]
            if not isinstance(value, Mapping) or 'type' not in value:
                raise TypeError(f'stage {name!r}: {key} must be a config dict with a type, '
                                f'got {value!r}')
        return cls(name=name, student_index=index, connector=FrozenConfig(cfg['connector']),
                   loss=FrozenConfig(cfg['loss']), tpp=tpp, query_from=src)

    @property
    def learnable_query(self) -> bool:
        """Whether the connector has its own queries (no ``query_from``)."""
        return self.query_from is None

    @property
    def teacher_space(self) -> str:
        """``'tpp'`` for a TPP stage, else ``'final'``."""
        return 'tpp' if self.tpp else 'final'

    def resolved(self, geometry: StageGeometry, views: Sequence[str]) -> 'DistillStage':
        """A copy with the derived geometry and the loss's active views."""
        return dataclasses.replace(self, geometry=geometry, views=tuple(views))

    def connector_config(self) -> Dict[str, Any]:
        """The connector config that is built: the stated options plus the derived shapes.

        Raises:
            RuntimeError: Before the stage is resolved.
        """
        if self.geometry is None:
            raise RuntimeError(f'stage {self.name!r} has no geometry yet; the distiller '
                               'derives it at build')
        cfg = self.connector.to_dict()
        cfg.update(self.geometry.connector_kwargs())
        return cfg

    def describe(self) -> str:
        """One line: student tap, connector dims, teacher space, views (and stated keys)."""
        head = f'{self.name}: student output {self.student_index}'
        if self.geometry is None:
            return f'{head} (not resolved)'
        g = self.geometry
        tap = 'tokens ' if len(g.student_shape) == 2 else ''
        query = ('learnable_query=True' if g.learnable_query
                 else f'learnable_query=False, queries from {self.query_from!r}')
        space = ('teacher TPP input' if g.teacher_space == 'tpp' else 'teacher final map')
        then = " -> teacher's last stage" if self.tpp else ''
        given = f'; stated and checked: {", ".join(g.given)}' if g.given else ''
        return (f'{head} {tap}{g.student_shape} -> {self.connector.get("type")}('
                f'in_channels={g.in_channels}, student_hw={g.student_hw}, '
                f'embed_dims={g.embed_dims}, query_hw={g.query_hw}, {query}) -> {space} '
                f'{g.embed_dims} x {g.query_hw}{then}; views {", ".join(self.views)}{given}')


def parse_stages(stages: Sequence[Mapping]) -> Tuple[DistillStage, ...]:
    """Validate a ``distill_stages`` list into records (no geometry yet).

    Args:
        stages (Sequence[Mapping]): The config's stage dicts; may be empty (logit-only KD).

    Returns:
        tuple[DistillStage, ...]: In config order.
    """
    if not isinstance(stages, Sequence) or isinstance(stages, (str, bytes)):
        raise TypeError(f'distill_stages must be a list of dicts (may be empty for logit-only '
                        f'distillation), got {stages!r}')
    parsed: Dict[str, DistillStage] = {}
    for cfg in stages:
        stage = DistillStage.from_config(cfg, parsed)
        parsed[stage.name] = stage
    return tuple(parsed.values())


# ----------------------------------------------------------------------- derivation
def _pair(value: Any) -> Any:
    """``14 -> (14, 14)``, ``[14, 14] -> (14, 14)``; anything else as given (for messages)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) == 2:
        return tuple(value)
    return value


def _same(given: Any, derived: Any) -> bool:
    if isinstance(derived, bool):
        return given is derived
    if isinstance(given, bool):
        return False
    return given == derived


def _student_grid(stage: DistillStage, shape: Tuple[int, ...], input_size: Tuple[int, int]
                  ) -> Tuple[int, Tuple[int, int]]:
    """``(in_channels, student_hw)`` of a tap ``(C, H, W)`` or tokens ``(N, C)``."""
    where = (f'stage {stage.name!r}: the student output {stage.student_index} has shape '
             f'{shape} at input size {input_size}')
    if len(shape) == 3:
        return int(shape[0]), (int(shape[1]), int(shape[2]))
    if len(shape) != 2:
        raise ValueError(f'{where}; expected a (C, H, W) map or (N, C) tokens. Pick another '
                         "student_index or set the backbone's out_type/out_indices so that it "
                         'returns maps')
    n, c = int(shape[0]), int(shape[1])
    given = stage.connector.get('student_hw')
    if given is not None:
        hw = _pair(given)
        if (not isinstance(hw, tuple) or len(hw) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in hw)
                or hw[0] * hw[1] != n):
            raise ValueError(f"{where} (tokens, N={n}, C={c}); connector key 'student_hw' is "
                             f'given as {given!r}, whose H*W is not N={n}. Give (H, W) with '
                             f'H*W = {n} in raster order')
        return c, hw
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(
            f'{where}: tokens (N={n}, C={c}) without a grid, and N is not a square, so the '
            f'grid cannot be derived. State it: connector student_hw=(H, W) with H*W = {n}. '
            'If the tokens include a class or register token, drop it in the backbone '
            "(e.g. with_cls_token=False, out_type='featmap')")
    return c, (side, side)


def derive_geometry(stage: DistillStage, student_shape: Sequence[int],
                    input_size: Sequence[int], teacher_dims: int,
                    teacher_hw: Sequence[int]) -> StageGeometry:
    """Derive a stage's connector shapes and check the ones its config states.

    ``in_channels`` and ``student_hw`` come from the student output (a map ``(C, H, W)``;
    tokens ``(N, C)`` get a square grid when N is a square, else ``student_hw`` must be
    stated); ``embed_dims`` and ``query_hw`` from the teacher space of the stage (its TPP input
    for ``tpp=True``, its final map otherwise); ``learnable_query`` is ``query_from is None``.

    Args:
        stage (DistillStage): The parsed stage.
        student_shape (Sequence[int]): The tapped student output without the batch.
        input_size (Sequence[int]): ``(H, W)`` of the student dry run.
        teacher_dims (int): Width of the stage's teacher space.
        teacher_hw (Sequence[int]): Grid of the stage's teacher space.

    Returns:
        StageGeometry: The derived shapes.

    Raises:
        ValueError: A stated value differs from the derived one (naming the stage, the key,
            both values and where the derived one comes from), or the tokens' grid cannot be
            derived.
    """
    shape = tuple(int(s) for s in student_shape)
    input_size = (int(input_size[0]), int(input_size[1]))
    in_channels, student_hw = _student_grid(stage, shape, input_size)
    derived = dict(in_channels=in_channels, student_hw=student_hw,
                   embed_dims=int(teacher_dims),
                   query_hw=(int(teacher_hw[0]), int(teacher_hw[1])),
                   learnable_query=stage.learnable_query)
    space = TEACHER_SPACES[stage.teacher_space]
    sources = dict(
        in_channels=f'the student output {stage.student_index} of shape {shape} at input size '
                    f'{input_size}',
        student_hw=f'the student output {stage.student_index} of shape {shape} at input size '
                   f'{input_size}',
        embed_dims=f'the {space} = {derived["embed_dims"]}, {derived["query_hw"]}',
        query_hw=f'the {space} = {derived["embed_dims"]}, {derived["query_hw"]}',
        learnable_query=(f'query_from={stage.query_from!r} (queries come from that stage)'
                         if stage.query_from is not None else 'query_from=None (no stage '
                         'supplies queries)'))
    given = []
    for key in GEOMETRY_KEYS:
        if key not in stage.connector:
            continue
        value = stage.connector[key]
        compared = _pair(value) if key.endswith('_hw') else value
        if not _same(compared, derived[key]):
            raise ValueError(
                f'stage {stage.name!r}: connector {key}={value!r} is given, but {key}='
                f'{derived[key]!r} is derived from {sources[key]}. Drop {key!r} from the '
                'stage (it is derived), or fix the student/teacher config if the derived '
                'value is not what you meant')
        given.append(key)
    return StageGeometry(student_shape=shape, input_size=input_size,
                         teacher_space=stage.teacher_space, given=tuple(given), **derived)
