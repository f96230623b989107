"""Strip training state from a checkpoint and name it after its content hash.

Removes the optimizer, the message hub, the parameter schedulers and (unless
``--keep-ema``) the EMA copy, saves the rest, and renames the file to
``<name>-<first 8 hex digits of its sha256>.pth``, the naming OpenMMLab's model zoos
use so that a download can be checked against its name. The input is read with
``weights_only=True``. The file is written atomically (:mod:`mmscalekd.utils.atomic_io`):
to a temporary file in OUT's folder, hashed, fsynced and renamed, so a killed run never
leaves a partial file under the published name. If that name already exists with the same
bytes it is kept (nothing to do); with other bytes it is replaced only with ``--force``.

Example:
    python tools/model_converters/publish_model.py student_res50.pth \
        scalekd_swinl_res50_in1k.pth
    # -> scalekd_swinl_res50_in1k-1a2b3c4d.pth
"""
import argparse
import hashlib
import os.path as osp
import sys
from typing import List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from mmscalekd.utils import safe_torch_load  # noqa: E402
from mmscalekd.utils.atomic_io import AtomicOutput, OutputExistsError, check_output  # noqa: E402
from mmscalekd.utils.checkpoint import CorruptCheckpointError, UnsafeCheckpointError  # noqa: E402
from mmscalekd.utils.tool_checks import check_input_file  # noqa: E402

TRAINING_STATE = ('optimizer', 'message_hub', 'param_schedulers')


def strip_training_state(checkpoint: dict, keep_ema: bool = False) -> Tuple[dict, List[str]]:
    """Return ``checkpoint`` without training-only entries, and the names removed.

    Args:
        checkpoint (dict): A loaded MMEngine checkpoint.
        keep_ema (bool): Keep ``ema_state_dict``. Defaults to False.
    """
    drop = TRAINING_STATE + (() if keep_ema else ('ema_state_dict', ))
    removed = [k for k in checkpoint if k in drop]
    return {k: v for k, v in checkpoint.items() if k not in drop}, removed


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _stem(dst: str) -> str:
    return dst[:-len('.pth')] if dst.endswith('.pth') else dst


def publish(src: str, dst: str, keep_ema: bool = False,
            force: bool = False) -> Tuple[str, List[str], bool]:
    """Write the stripped checkpoint as ``<dst stem>-<sha8>.pth``.

    Args:
        src (str): The checkpoint to publish.
        dst (str): The name before the hash suffix (``.pth`` optional).
        keep_ema (bool): Keep ``ema_state_dict``. Defaults to False.
        force (bool): Replace an existing file of that name whose bytes differ.
            Defaults to False.

    Returns:
        tuple: The final path, the removed entries, and whether the file was written
        (False when the same bytes were already published under that name).

    Raises:
        ValueError: ``src`` does not hold a checkpoint dict.
        OutputExistsError: The final name exists with other bytes and ``force`` is False.
    """
    checkpoint = safe_torch_load(src, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{src} does not hold a checkpoint dict (it holds a '
                         f'{type(checkpoint).__name__})')
    if 'state_dict' not in checkpoint:  # a bare state dict: wrap it like a checkpoint
        checkpoint = {'state_dict': checkpoint}
    stripped, removed = strip_training_state(checkpoint, keep_ema)
    stem = _stem(dst)
    # The final name depends on the bytes: write first (next to it), then name it.
    out = AtomicOutput(stem + '.pth', force=True, what='OUT')
    with out:
        torch.save(stripped, out.tmp)
        sha = sha256_of(out.tmp)
        out.path = f'{stem}-{sha[:8]}.pth'
        if osp.isfile(out.path):
            if sha256_of(out.path) == sha:
                out.cancel()
                return out.path, removed, False
            if not force:
                raise OutputExistsError(
                    f'{out.path!r} exists with other bytes (same 8-digit prefix, another '
                    'sha256); pass --force to replace it, or choose another OUT name')
    return out.path, removed, True


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description='Strip training state from a checkpoint and '
                                     'add its sha256 prefix to the file name')
    parser.add_argument('src', metavar='IN', help='checkpoint to publish')
    parser.add_argument('dst', metavar='OUT', help='output name; "-<sha8>.pth" is appended')
    parser.add_argument('--keep-ema', action='store_true', help='keep ema_state_dict')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing OUT-<sha8>.pth whose bytes differ')
    args = parser.parse_args(argv)
    try:  # checked before the input is read
        check_input_file(args.src, 'input checkpoint IN')
        # OUT names a file (a folder is refused); the file written is OUT-<sha8>.pth.
        check_output(args.dst, force=True, what='OUT')
    except OSError as err:
        parser.error(str(err))
    try:
        final, removed, written = publish(args.src, args.dst, args.keep_ema, args.force)
    except OutputExistsError as err:
        parser.error(str(err))
    except (ValueError, CorruptCheckpointError, UnsafeCheckpointError) as err:
        sys.exit(f'publish_model: error: {err}')
    except OSError as err:  # a full disk, a vanished folder: nothing half-written stays
        sys.exit(f'publish_model: error: {err}; nothing was published')
    print(f'removed: {", ".join(removed) or "nothing"}')
    if not written:
        print(f'unchanged: {final} already holds exactly these bytes')
    print(final)
    return final


if __name__ == '__main__':
    main()
