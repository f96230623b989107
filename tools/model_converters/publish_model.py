"""Strip training state from a checkpoint and name it after its content hash.

Removes the optimizer, the message hub, the parameter schedulers and (unless
``--keep-ema``) the EMA copy, saves the rest, and renames the file to
``<name>-<first 8 hex digits of its sha256>.pth``, the naming OpenMMLab's model zoos
use so that a download can be checked against its name. The input is read with
``weights_only=True``.

Example:
    python tools/model_converters/publish_model.py student_res50.pth \
        scalekd_swinl_res50_in1k.pth
    # -> scalekd_swinl_res50_in1k-1a2b3c4d.pth
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

import mmscalekd  # noqa: E402,F401  (compat fixes before anything else)
from mmscalekd.utils import safe_torch_load  # noqa: E402

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


def publish(src: str, dst: str, keep_ema: bool = False) -> Tuple[str, List[str]]:
    """Write the stripped checkpoint and return its final path and the removed entries."""
    checkpoint = safe_torch_load(src, map_location='cpu')
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{src} does not hold a checkpoint dict')
    if 'state_dict' not in checkpoint:  # a bare state dict: wrap it like a checkpoint
        checkpoint = {'state_dict': checkpoint}
    stripped, removed = strip_training_state(checkpoint, keep_ema)
    stem = dst[:-len('.pth')] if dst.endswith('.pth') else dst
    tmp = f'{stem}.tmp-{os.getpid()}.pth'
    torch.save(stripped, tmp)
    final = f'{stem}-{sha256_of(tmp)[:8]}.pth'
    os.replace(tmp, final)
    return final, removed


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description='Strip training state from a checkpoint and '
                                     'add its sha256 prefix to the file name')
    parser.add_argument('src', metavar='IN', help='checkpoint to publish')
    parser.add_argument('dst', metavar='OUT', help='output name; "-<sha8>.pth" is appended')
    parser.add_argument('--keep-ema', action='store_true', help='keep ema_state_dict')
    args = parser.parse_args(argv)
    if not osp.isfile(args.src):
        parser.error(f'input checkpoint {args.src!r} does not exist')
    out_dir = osp.dirname(osp.abspath(args.dst))
    if not osp.isdir(out_dir):
        parser.error(f'output folder {out_dir!r} does not exist')
    final, removed = publish(args.src, args.dst, args.keep_ema)
    print(f'removed: {", ".join(removed) or "nothing"}')
    print(final)
    return final


if __name__ == '__main__':
    main()
