"""Checks our command-line tools run on their inputs before any work is done.

Each check raises an ordinary exception (``FileNotFoundError``, ``ValueError``, ...) or a
:class:`ToolInputError` whose message names the bad value, what is accepted and what to do;
the tools turn them into one ``tools/<name>.py: error: ...`` line.

* :func:`check_input_file`: a path that must be a readable file (not a folder).
* :func:`load_config`: ``Config.fromfile`` whose syntax errors name the file and line
  (MMEngine 0.10 reports them in ``File "<unknown>"``), as do errors raised while the config
  runs, and whose missing ``_base_`` files name the config that asks for them.
* :func:`check_config_kind`: a leaf config of our scope with what the tool needs
  (a ``model``; the train or test loop's entries), not a ``_base_`` fragment or an
  MMDetection / MMSegmentation config.
* :func:`check_cfg_options`: ``--cfg-options`` whose top-level keys exist (MMEngine merges
  an unknown one silently, and nothing reads it); :class:`CfgOptionsAction` refuses an item
  that is not ``KEY=VALUE`` (MMEngine's ``DictAction`` raises a bare unpacking error).
* :func:`check_data_roots`: the local ``data_root`` of every dataset a tool will read exists,
  before the model (and a teacher download) is built.
"""
from __future__ import annotations

import ast
import difflib
import inspect
import os
import os.path as osp
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import DictAction

__all__ = [
    'ToolInputError', 'ConfigSyntaxError', 'CfgOptionsAction', 'check_input_file',
    'load_config', 'check_config_kind', 'check_cfg_options', 'check_data_roots',
    'known_top_level_keys', 'CONFIG_EXTENSIONS'
]

#: The config formats ``mmengine.Config.fromfile`` reads.
CONFIG_EXTENSIONS = ('.py', '.json', '.yaml', '.yml')

# Top-level entries that MMEngine's Runner (mmengine/runner/runner.py: Runner.__init__,
# Runner.from_cfg, Runner.train) and Config (mmengine/config/config.py) read, beyond the
# arguments of Runner.__init__ (added by known_top_level_keys).
_RUNNER_EXTRA_KEYS = ('runner_type', 'model_wrapper_cfg', 'compile', 'activation_checkpointing',
                      'efficient_conv_bn_eval', 'strategy', 'custom_imports', 'gpu_ids')

# Scopes of the downstream libraries whose configs live in configs/downstream.
_OTHER_TOOLS = {
    'mmdet': 'MMDetection', 'mmseg': 'MMSegmentation', 'mmdet3d': 'MMDetection3D',
    'mmpose': 'MMPose', 'mmaction': 'MMAction2'
}


class ToolInputError(ValueError):
    """An input a tool cannot use; the message says which, why and what to do instead."""


class ConfigSyntaxError(ToolInputError):
    """A config file (or one of its ``_base_`` files) is not valid Python."""


def check_input_file(path: str, what: str = 'input') -> str:
    """Refuse a path that is missing, a folder, or unreadable; return it unchanged.

    Args:
        path (str): The path given by the user.
        what (str): What it should be, for messages, e.g. ``'checkpoint'``.

    Raises:
        FileNotFoundError: Nothing exists at ``path``.
        IsADirectoryError: ``path`` is a folder.
        PermissionError: ``path`` cannot be read.
    """
    path = str(path)
    if osp.isdir(path):
        raise IsADirectoryError(f'{what} {path!r} is a folder, not a file; give the file in it')
    if not osp.exists(path):
        hint = ''
        if osp.islink(path):
            hint = f' (it is a broken symbolic link to {os.readlink(path)!r})'
        elif not osp.isdir(osp.dirname(osp.abspath(path))):
            hint = f' (not even its folder {osp.dirname(osp.abspath(path))!r} exists)'
        raise FileNotFoundError(f'{what} {path!r} does not exist{hint}')
    if not os.access(path, os.R_OK):
        raise PermissionError(f'{what} {path!r} cannot be read (permission denied)')
    return path


def _base_files(path: str) -> List[str]:
    """Local ``_base_`` files named by the Python config ``path`` (literal strings only)."""
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [osp.normpath(osp.join(osp.dirname(path), n)) for n in names
                    if isinstance(n, str) and '::' not in n]
    return []


def _find_syntax_error(path: str, seen: Optional[set] = None) -> Optional[SyntaxError]:
    """The first syntax error in ``path`` or its local ``_base_`` files, with its filename."""
    seen = set() if seen is None else seen
    if path in seen or not path.endswith('.py') or not osp.isfile(path):
        return None
    seen.add(path)
    try:
        with open(path, encoding='utf-8') as f:
            ast.parse(f.read(), filename=path)
    except SyntaxError as err:
        return err
    except (OSError, ValueError):
        return None
    for base in _base_files(path):
        found = _find_syntax_error(base, seen)
        if found is not None:
            return found
    return None


def _syntax_message(err: SyntaxError, config: str) -> str:
    where = f'{err.filename}:{err.lineno}' + (f':{err.offset}' if err.offset else '')
    message = f'config {config!r} is not valid Python: {where}: {err.msg}'
    if err.filename and osp.abspath(err.filename) != osp.abspath(config):
        message += ' (a _base_ file of it)'
    if err.text:
        line = err.text.rstrip('\n')
        message += f'\n    {line.strip()}'
        if err.offset:
            indent = len(line) - len(line.lstrip())
            message += '\n    ' + ' ' * max(err.offset - 1 - indent, 0) + '^'
    return message + '\nFix the line above and run again.'


def load_config(path: str) -> Any:
    """``mmengine.Config.fromfile(path)`` with messages that name the file and the line.

    Args:
        path (str): The config file.

    Raises:
        FileNotFoundError / IsADirectoryError / PermissionError: See :func:`check_input_file`.
        ToolInputError: ``path`` is not a config format (e.g. a checkpoint), or a
            ``_base_`` file it names does not exist.
        ConfigSyntaxError: The config or one of its ``_base_`` files is not valid Python;
            the message gives ``file:line:column``, the line and a caret.
        ToolInputError: Also for an exception raised while the config runs (its file,
            line and source line), a broken JSON / YAML file or one that is not UTF-8.
    """
    from mmengine.config import Config
    check_input_file(path, 'config file')
    ext = osp.splitext(path)[1].lower()
    if ext not in CONFIG_EXTENSIONS:
        hint = (' It looks like a checkpoint: the config comes first, the checkpoint second '
                '(tools/test.py CONFIG CHECKPOINT).' if ext in ('.pth', '.pt', '.ckpt', '.bin',
                                                                  '.safetensors') else '')
        raise ToolInputError(f'config file {path!r} has the extension {ext or "(none)"!r}; a '
                             f'config is one of {", ".join(CONFIG_EXTENSIONS)}.{hint}')
    try:
        return Config.fromfile(path)
    except SyntaxError as err:
        found = _find_syntax_error(osp.abspath(path)) or err
        if found.filename in (None, '<unknown>'):
            found.filename = path
        raise ConfigSyntaxError(_syntax_message(found, path)) from None
    except FileNotFoundError as err:
        missing = err.filename
        if missing and osp.abspath(missing) != osp.abspath(path):
            parents = [p for p in [osp.abspath(path)] + _all_bases(osp.abspath(path))
                       if osp.abspath(missing) in _base_files(p)]
            named_by = parents[0] if parents else path
            raise ToolInputError(
                f'config {path!r}: the _base_ file {missing!r} named by {named_by!r} does not '
                'exist; _base_ paths are relative to the file that names them.') from err
        raise
    except UnicodeDecodeError as err:
        raise ToolInputError(f'config file {path!r} is not UTF-8 text ({err}); a config is a '
                             'Python (or JSON / YAML) text file') from None
    except Exception as err:  # noqa: BLE001  (re-raised unless it happened in the config)
        if ext != '.py':  # the JSON / YAML parser's message carries the line and column
            kind = 'JSON' if ext == '.json' else 'YAML'
            raise ToolInputError(f'config {path!r} is not valid {kind}: '
                                 f'{type(err).__name__}: {err}') from err
        frame = _config_frame(err, path)
        if frame is None:
            raise
        raise ToolInputError(
            f'config {path!r} fails while it is read: {frame.filename}:{frame.lineno}: '
            f'{type(err).__name__}: {err}\n    {(frame.line or "").strip()}') from err


def _config_frame(err: BaseException, path: str) -> Any:
    """The innermost traceback frame of ``err`` that runs the config or one of its bases."""
    import traceback
    files = {osp.abspath(path)} | set(_all_bases(osp.abspath(path)))
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if osp.abspath(f.filename) in files]
    return frames[-1] if frames else None


def _all_bases(path: str, seen: Optional[set] = None) -> List[str]:
    seen = set() if seen is None else seen
    found = []
    for base in _base_files(path):
        if base not in seen and osp.isfile(base):
            seen.add(base)
            found += [base] + _all_bases(base, seen)
    return found


def check_config_kind(cfg: Any, path: str, needs: Sequence[str] = ('model', ),
                      tool: str = 'this tool') -> None:
    """Refuse a config that is not a leaf config of our scope with the entries ``needs``.

    Args:
        cfg (Config): The loaded config.
        path (str): Its file, for messages.
        needs (Sequence[str]): Top-level entries the tool uses, e.g. ``('model',
            'train_dataloader', 'train_cfg', 'optim_wrapper')``.
        tool (str): The tool, for messages, e.g. ``'tools/train.py'``.

    Raises:
        ToolInputError: The config belongs to another OpenMMLab library, or lacks an entry.
    """
    scope = cfg.get('default_scope')
    if scope in _OTHER_TOOLS:
        raise ToolInputError(
            f'{path!r} is an {_OTHER_TOOLS[scope]} config (default_scope={scope!r}); '
            f'{tool} runs mmscalekd configs. Run it with {_OTHER_TOOLS[scope]}\'s own '
            f'tools/train.py / tools/test.py (docs/downstream.md shows how).')
    missing = [key for key in needs if cfg.get(key) is None]
    if not missing:
        return
    if 'model' in missing:
        raise ToolInputError(
            f'{path!r} has no `model`: it is not a complete config (a _base_ file holds only a '
            'dataset, schedule or runtime part). Pass a leaf config, e.g. one of '
            'configs/scalekd/*.py.')
    raise ToolInputError(
        f'{path!r} has no {", ".join(f"`{k}`" for k in missing)}, which {tool} needs. Add '
        f'{"it" if len(missing) == 1 else "them"} to the config (e.g. through `_base_`) or '
        f'with --cfg-options.')


def known_top_level_keys(cfg: Any) -> List[str]:
    """Top-level keys an override may set: the config's own and the Runner's, sorted."""
    from mmengine.runner import Runner
    runner_keys = [name for name in inspect.signature(Runner.__init__).parameters
                   if name not in ('self', 'cfg')]
    return sorted(set(cfg.keys()) | set(runner_keys) | set(_RUNNER_EXTRA_KEYS))


def _top_level(key: str) -> str:
    return key.split('.', 1)[0]


def check_cfg_options(options: Optional[Dict[str, Any]], cfg: Any,
                      option: str = '--cfg-options') -> None:
    """Refuse override keys whose top level is neither in ``cfg`` nor read by the Runner.

    ``Config.merge_from_dict`` adds any key, so ``trian_cfg.max_iters=6`` would be merged
    and never read. Nested keys are not checked here: under a ``type`` they reach the
    class, which refuses unknown arguments when it is built.

    Args:
        options (dict, optional): The parsed ``--cfg-options`` (``{'a.b': value}``).
        cfg (Config): The config before the overrides are merged.
        option (str): The option's name in messages. Defaults to ``'--cfg-options'``.

    Raises:
        ToolInputError: Naming each unknown key, the closest known names and the rule.
    """
    if not options:
        return
    known = known_top_level_keys(cfg)
    unknown: List[Tuple[str, List[str]]] = []
    for key in options:
        top = _top_level(key)
        if top not in known:
            unknown.append((key, difflib.get_close_matches(top, known, n=3, cutoff=0.6)))
    if not unknown:
        return
    parts = []
    for key, close in unknown:
        suggestion = (f'did you mean {" or ".join(repr(c) for c in close)}?' if close
                      else 'no known key is close')
        parts.append(f'{key!r} ({suggestion})')
    raise ToolInputError(
        f'{option}: unknown top-level key{"s" if len(unknown) > 1 else ""} '
        f'{"; ".join(parts)}. Accepted: the keys of the config ({_short(cfg.keys())}) and '
        'the Runner\'s (mmengine Runner arguments such as work_dir, load_from, resume, '
        'env_cfg, randomness). A new top-level entry belongs in the config file.')


def _short(names: Iterable[str], n: int = 12) -> str:
    names = sorted(names)
    text = ', '.join(names[:n])
    return text + (f', ... ({len(names)} in all)' if len(names) > n else '')


class CfgOptionsAction(DictAction):
    """MMEngine's ``DictAction`` that refuses an item which is not ``KEY=VALUE``.

    ``--cfg-options train_cfg`` (no ``=``) or ``=5`` (no key) fail as a usage error naming
    the item, instead of ``ValueError: not enough values to unpack``.
    """

    def __call__(self, parser: Any, namespace: Any, values: Any,
                 option_string: Optional[str] = None) -> None:
        for item in values or []:
            key = item.split('=', 1)[0]
            if '=' not in item or not key.strip() or key != key.strip():
                parser.error(f'{option_string}: {item!r} is not KEY=VALUE (e.g. '
                             'train_cfg.max_iters=10, optim_wrapper.optimizer.lr=0.01, '
                             'model.backbone.out_indices="(2,3)"); quote values with spaces')
        try:
            super().__call__(parser, namespace, values, option_string)
        except (ValueError, AssertionError) as err:
            parser.error(f'{option_string}: cannot parse {values!r} ({err})')


def _datasets(cfg: Any, where: str) -> Iterator[Tuple[str, Any]]:
    """Every dataset config below ``cfg`` (wrappers' ``dataset`` / ``datasets`` included)."""
    if not isinstance(cfg, dict):
        return
    yield where, cfg
    inner = cfg.get('dataset')
    if isinstance(inner, dict):
        yield from _datasets(inner, f'{where}.dataset')
    for i, child in enumerate(cfg.get('datasets') or []):
        yield from _datasets(child, f'{where}.datasets.{i}')


def check_data_roots(cfg: Any, loaders: Sequence[str]) -> None:
    """Refuse a local ``data_root`` that does not exist, for the dataloaders a tool reads.

    Args:
        cfg (Config): The merged config.
        loaders (Sequence[str]): Top-level dataloader entries, e.g. ``('train_dataloader',
            'val_dataloader')``; missing or None entries are skipped.

    Raises:
        ToolInputError: Naming the entry, the path and the override that sets it.
    """
    for loader in loaders:
        entry = cfg.get(loader)
        if not isinstance(entry, dict):
            continue
        for where, dataset in _datasets(entry.get('dataset'), f'{loader}.dataset'):
            root = dataset.get('data_root')
            if not isinstance(root, str) or not root or '://' in root:
                continue
            if not osp.isdir(osp.expanduser(root)):
                what = 'is a file, not a folder' if osp.exists(root) else 'does not exist'
                raise ToolInputError(
                    f'{where}.data_root {root!r} {what}. Point it at the dataset folder, e.g. '
                    f'--cfg-options {where}.data_root=/path/to/data (ImageNet: the folder with '
                    'train/, val/ and meta/).')
