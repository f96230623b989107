"""Check the model zoo: every metafile listed in model-index.yml is well formed.

For each ``Import`` of the root ``model-index.yml`` (mim's format) the metafile
must have ``Collections`` and ``Models``; every model needs ``Name``,
``In Collection`` (an existing collection), ``Metadata``, ``Results`` (a list of
``{Task, Dataset, Metrics}``), ``Config`` (an existing file that MMEngine's
``Config.fromfile`` parses) and a ``Weights`` key (``null`` when no released file
exists). Names must be unique across the whole zoo.

Usage::

    python tools/misc/check_metafiles.py [--index model-index.yml]

Exits with status 1 and one line per problem when anything is wrong.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Dict, List

import yaml

# Run from a checkout without installing: put the repository root on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

_MODEL_KEYS = ('Name', 'In Collection', 'Metadata', 'Results', 'Config', 'Weights')
_RESULT_KEYS = ('Task', 'Dataset', 'Metrics')


def _parse_config(path: str) -> str | None:
    """Return an error message if the config at ``path`` does not parse."""
    from mmengine.config import Config

    try:
        Config.fromfile(path)
    except Exception as err:  # any parse failure is a problem to report
        return f'{type(err).__name__}: {err}'
    return None


def check_metafile(path: str, root: str, seen: Dict[str, str],
                   parse: bool = True) -> List[str]:
    """Check one metafile.

    Args:
        path (str): Path of the metafile.
        root (str): Repository root; ``Config`` paths are relative to it.
        seen (Dict[str, str]): Model name -> metafile that defined it, updated.
        parse (bool): Parse each config with ``Config.fromfile``. Defaults to True.

    Returns:
        List[str]: One message per problem.
    """
    problems: List[str] = []
    if not osp.isfile(path):
        return [f'{path}: file not found']
    with open(path, encoding='utf-8') as f:
        data = yaml.safe_load(f) or {}
    collections = data.get('Collections')
    models = data.get('Models')
    if not isinstance(collections, list) or not collections:
        problems.append(f'{path}: missing or empty "Collections"')
        collections = []
    if not isinstance(models, list) or not models:
        problems.append(f'{path}: missing or empty "Models"')
        models = []
    coll_names = set()
    for coll in collections:
        if not isinstance(coll, dict) or 'Name' not in coll:
            problems.append(f'{path}: a collection has no "Name"')
            continue
        coll_names.add(coll['Name'])
    for i, model in enumerate(models):
        where = f'{path}: model #{i}'
        if not isinstance(model, dict):
            problems.append(f'{where}: not a mapping')
            continue
        name = model.get('Name')
        if name:
            where = f'{path}: {name}'
            if name in seen:
                problems.append(f'{where}: duplicate name (also in {seen[name]})')
            seen[name] = path
        for key in _MODEL_KEYS:
            if key not in model:
                problems.append(f'{where}: missing "{key}"')
        if model.get('In Collection') is not None and model['In Collection'] not in coll_names:
            problems.append(f'{where}: unknown collection {model["In Collection"]!r}')
        results = model.get('Results')
        if 'Results' in model:
            if not isinstance(results, list) or not results:
                problems.append(f'{where}: "Results" must be a non-empty list')
            else:
                for res in results:
                    missing = [k for k in _RESULT_KEYS if not isinstance(res, dict) or k not in res]
                    if missing:
                        problems.append(f'{where}: a result lacks {missing}')
        cfg = model.get('Config')
        if cfg:
            cfg_path = osp.join(root, cfg)
            if not osp.isfile(cfg_path):
                problems.append(f'{where}: config {cfg} does not exist')
            elif parse:
                err = _parse_config(cfg_path)
                if err:
                    problems.append(f'{where}: config {cfg} does not parse ({err})')
    return problems


def check_index(index: str, parse: bool = True) -> List[str]:
    """Check every metafile imported by a ``model-index.yml``.

    Args:
        index (str): Path of the root ``model-index.yml``.
        parse (bool): Parse each config. Defaults to True.

    Returns:
        List[str]: One message per problem (empty when the zoo is consistent).
    """
    if not osp.isfile(index):
        return [f'{index}: file not found']
    root = osp.dirname(osp.abspath(index))
    with open(index, encoding='utf-8') as f:
        data = yaml.safe_load(f) or {}
    imports = data.get('Import')
    if not isinstance(imports, list) or not imports:
        return [f'{index}: missing or empty "Import" list']
    seen: Dict[str, str] = {}
    problems: List[str] = []
    for rel in imports:
        problems += check_metafile(osp.join(root, rel), root, seen, parse=parse)
    return problems


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--index', default='model-index.yml', help='root model-index.yml')
    parser.add_argument('--no-parse', action='store_true', help='skip Config.fromfile')
    args = parser.parse_args(argv)
    problems = check_index(args.index, parse=not args.no_parse)
    for p in problems:
        print(p)
    if problems:
        print(f'{len(problems)} problem(s) found')
        return 1
    print('all metafiles OK')
    return 0


if __name__ == '__main__':
    sys.exit(main())
