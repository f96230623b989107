"""Mining unlabeled images for SSLD as a library; ``tools/ssld/mine_unlabeled.py`` is its CLI.

* :class:`MiningOptions`: what to mine (typed, validated).
* :class:`TeacherScorer`: the config's teacher adapter, test pipeline and normalisation.
* :func:`mine`: resumable, sharded scoring, validation de-duplication and the top-k selection.
* :func:`init_distributed`: process groups for ``--launcher pytorch|slurm|mpi``.
"""
from .dedup import NearDuplicateIndex, hamming_nearest, phash64
from .distributed import DistContext, init_distributed
from .io import atomic_write, remove_stale_temporaries, write_file_list
from .miner import MiningStateError, iter_parts, load_scores, mine, run_fingerprint
from .options import DEDUP_MODES, MiningOptions
from .progress import Progress
from .scorer import PRECISIONS, Scorer, TeacherScorer, resolve_pipeline, state_dict_sha256

__all__ = [
    'MiningOptions', 'DEDUP_MODES', 'PRECISIONS', 'TeacherScorer', 'Scorer', 'mine',
    'MiningStateError', 'DistContext', 'init_distributed', 'NearDuplicateIndex',
    'hamming_nearest', 'phash64', 'Progress', 'atomic_write', 'write_file_list',
    'remove_stale_temporaries', 'iter_parts', 'load_scores', 'run_fingerprint',
    'resolve_pipeline', 'state_dict_sha256'
]
