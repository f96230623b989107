"""Registries of mmscalekd: child nodes of mmpretrain's.

Each node's parent is the mmpretrain node of the same kind, so a config with
``default_scope='mmscalekd'`` resolves our types *and* bare mmpretrain types
(``ImageClassifier``, ``ResNet``, ``SwinTransformer``) without scope prefixes.
"""
import difflib
from typing import Any, Dict, List, Optional, Sequence

from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain_registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'OPTIMIZERS',
    'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS',
    'BATCH_AUGMENTS', 'TASK_UTILS', 'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS',
    'UnknownTypeError', 'registered_names', 'close_type_names', 'check_types', 'build_checked',
    'check_model_config',
]


def _child(name: str, parent: Registry, location: str | None = None) -> Registry:
    return Registry(name, parent=parent, scope='mmscalekd',
                    locations=[location] if location else [])


RUNNERS = _child('runner', mmpretrain_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child('runner constructor', mmpretrain_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child('loop', mmpretrain_registry.LOOPS, 'mmscalekd.engine')
HOOKS = _child('hook', mmpretrain_registry.HOOKS, 'mmscalekd.engine')
LOG_PROCESSORS = _child('log processor', mmpretrain_registry.LOG_PROCESSORS)
OPTIMIZERS = _child('optimizer', mmpretrain_registry.OPTIMIZERS, 'mmscalekd.engine')
OPTIM_WRAPPERS = _child('optimizer_wrapper', mmpretrain_registry.OPTIM_WRAPPERS, 'mmscalekd.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child(
    'optimizer wrapper constructor', mmpretrain_registry.OPTIM_WRAPPER_CONSTRUCTORS,
    'mmscalekd.engine')
PARAM_SCHEDULERS = _child('parameter scheduler', mmpretrain_registry.PARAM_SCHEDULERS,
                          'mmscalekd.engine')
DATASETS = _child('dataset', mmpretrain_registry.DATASETS, 'mmscalekd.datasets')
DATA_SAMPLERS = _child('data sampler', mmpretrain_registry.DATA_SAMPLERS, 'mmscalekd.datasets')
TRANSFORMS = _child('transform', mmpretrain_registry.TRANSFORMS, 'mmscalekd.datasets')
MODELS = _child('model', mmpretrain_registry.MODELS, 'mmscalekd.models')
MODEL_WRAPPERS = _child('model_wrapper', mmpretrain_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child('weight initializer', mmpretrain_registry.WEIGHT_INITIALIZERS)
BATCH_AUGMENTS = _child('batch augment', mmpretrain_registry.BATCH_AUGMENTS)
TASK_UTILS = _child('task util', mmpretrain_registry.TASK_UTILS)
METRICS = _child('metric', mmpretrain_registry.METRICS)
EVALUATORS = _child('evaluator', mmpretrain_registry.EVALUATORS)
VISUALIZERS = _child('visualizer', mmpretrain_registry.VISUALIZERS)
VISBACKENDS = _child('vis_backend', mmpretrain_registry.VISBACKENDS)


# --------------------------------------------------------------- type checks with suggestions
# Keys whose dicts are built by another registry than the one of the enclosing dict.
_KEY_REGISTRIES = {'init_cfg': 'WEIGHT_INITIALIZERS', 'override': 'WEIGHT_INITIALIZERS',
                   'augments': 'BATCH_AUGMENTS'}
_LIST_ALL = ('python -c "from mmscalekd.utils import register_all_modules as r; r(); '
             'from mmscalekd import registry as g; print(g.registered_names(g.{node}))"')


class UnknownTypeError(KeyError):
    """A config names a ``type`` that no registry node on the search path holds.

    A ``KeyError`` (what MMEngine raises for the same mistake) whose ``str`` is the plain
    message, not its ``repr``.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


def registered_names(registry: Registry) -> List[str]:
    """Every name that ``registry.get`` resolves without a scope prefix, sorted.

    Args:
        registry (Registry): A node, e.g. :data:`MODELS`; its own names and its
            ancestors' (mmpretrain's, MMEngine's) are listed.

    Returns:
        list[str]: The names.
    """
    registry.import_from_location()
    names = set()
    node: Optional[Registry] = registry
    while node is not None:
        names.update(node.module_dict)
        node = node.parent
    return sorted(names)


def close_type_names(name: str, registry: Registry, n: int = 5) -> List[str]:
    """Registered names closest to ``name`` (case-insensitive ``difflib`` ratio >= 0.6).

    Args:
        name (str): The unknown type, possibly with a scope prefix (``'mmpretrain.ResNt'``).
        registry (Registry): The node whose names (and its ancestors') are candidates.
        n (int): At most this many suggestions. Defaults to 5.

    Returns:
        list[str]: Closest first.
    """
    key = name.rsplit('.', 1)[-1].lower()
    by_lower: Dict[str, str] = {}
    for candidate in registered_names(registry):
        by_lower.setdefault(candidate.lower(), candidate)
    return [by_lower[m] for m in difflib.get_close_matches(key, list(by_lower), n=n)]


def _node_name(registry: Registry) -> str:
    for name in __all__:
        if globals().get(name) is registry:
            return name
    return 'MODELS'


def unknown_type_error(name: str, where: str, registry: Registry,
                       hint: str = '') -> UnknownTypeError:
    """The error for an unknown ``type``: the value, its place and the closest names.

    Args:
        name (str): The unknown type.
        where (str): Dotted place in the config, e.g. ``'model.student.backbone'``.
        registry (Registry): The node that was searched.
        hint (str): An extra sentence (e.g. the accepted subset). Defaults to ''.
    """
    close = close_type_names(name, registry)
    suggestion = (f'did you mean {" or ".join(repr(c) for c in close)}?' if close
                  else 'no registered name is close.')
    message = (f'{where}: unknown type {name!r}; it is not in the {registry.scope}::'
               f'{registry.name} registry or its parents; {suggestion}')
    if hint:
        message += f' {hint}'
    message += f' List every accepted name with: {_LIST_ALL.format(node=_node_name(registry))}'
    return UnknownTypeError(message)


def _is_known(name: str, registries: Sequence[Registry]) -> bool:
    for registry in registries:
        try:
            if registry.get(name) is not None:
                return True
        except Exception:  # noqa: BLE001  (an unimportable scope prefix: treat as unknown)
            continue
    return False


def check_types(cfg: Any, where: str = 'model', registry: Optional[Registry] = None) -> None:
    """Check every string ``type`` in a (nested) config before anything is built.

    Dicts below ``init_cfg``/``override`` are looked up in :data:`WEIGHT_INITIALIZERS`,
    below ``augments`` in :data:`BATCH_AUGMENTS`, all others in ``registry``. A type is
    accepted when any of these nodes (or :data:`TASK_UTILS`) resolves it, so a module that
    builds a sub-config from an unusual registry is not refused. Class objects as ``type``
    are not checked.

    Args:
        cfg (Any): A config dict (or list of them); other values are ignored.
        where (str): Dotted name of ``cfg`` in messages. Defaults to ``'model'``.
        registry (Registry, optional): Node for ``cfg`` itself. Defaults to :data:`MODELS`.

    Raises:
        UnknownTypeError: On the first unknown type, naming its place (e.g.
            ``'model.student.backbone'``) and the closest registered names.
    """
    registry = MODELS if registry is None else registry
    fallback = (MODELS, WEIGHT_INITIALIZERS, BATCH_AUGMENTS, TASK_UTILS)
    if isinstance(cfg, dict):
        name = cfg.get('type')
        if isinstance(name, str) and not _is_known(name, (registry, *fallback)):
            raise unknown_type_error(name, where, registry)
        for key, value in cfg.items():
            if key == 'type' or not isinstance(key, str):
                continue
            child = globals()[_KEY_REGISTRIES[key]] if key in _KEY_REGISTRIES else registry
            check_types(value, f'{where}.{key}', child)
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            check_types(value, f'{where}[{i}]', registry)


def build_checked(registry: Registry, cfg: dict, where: str, hint: str = '',
                  **kwargs: Any) -> Any:
    """``registry.build(cfg)`` after :func:`check_types` (same result, clearer errors).

    Args:
        registry (Registry): The node to build from, e.g. :data:`MODELS`.
        cfg (dict): The config.
        where (str): Dotted name of ``cfg`` in messages, e.g. ``'ScaleKDDistiller.student'``.
        hint (str): An extra sentence for an unknown top-level type. Defaults to ''.
        **kwargs: Passed to ``registry.build``.

    Raises:
        UnknownTypeError: For an unknown type anywhere in ``cfg``.
    """
    name = cfg.get('type') if isinstance(cfg, dict) else None
    if isinstance(name, str) and not _is_known(name, (registry, )):
        raise unknown_type_error(name, where, registry, hint)
    check_types(cfg, where, registry)
    return registry.build(cfg, **kwargs)


def check_model_config(cfg: Any, where: str = 'model') -> None:
    """:func:`check_types` on a Runner config's ``model`` and ``data_preprocessor``.

    Used by ``tools/train.py`` and ``tools/test.py`` before the Runner builds anything. A
    config whose ``default_scope`` is another package's (e.g. ``'mmdet'``) is left to that
    package's registries.

    Args:
        cfg (Any): The Runner config (a ``Config`` or dict).
        where (str): Name of ``cfg.model`` in messages, e.g. ``'model.student'`` when a
            distiller config's student was put in its place. Defaults to ``'model'``.

    Raises:
        UnknownTypeError: For an unknown type, e.g. at ``'model.student.backbone'``.
    """
    if cfg.get('default_scope', 'mmscalekd') not in (None, 'mmscalekd'):
        return
    check_types(cfg.get('model'), where)
    check_types(cfg.get('data_preprocessor'), 'data_preprocessor')
