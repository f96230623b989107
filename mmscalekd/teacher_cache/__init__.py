"""Teacher-output cache for logit distillation (``distill_stages=[]``: logit KD, SSLD).

The teacher is run once over ``E`` epochs of augmented views by ``tools/write_teacher_cache.py``;
training then re-creates every view from its per-(sample, epoch) seed
(:class:`~mmscalekd.datasets.SeededViewDataset`) and reads the teacher's top-k probabilities
from the cache (:class:`~mmscalekd.datasets.TeacherCacheDataset`) instead of running the
teacher. Design and measured figures: ``docs/teacher_cache.md``.
"""
from .hashing import canonical, config_diff, config_sha256, file_sha256, state_dict_sha256
from .manifest import (
                       CacheManifest,
                       TeacherCacheError,
                       load_manifest,
                       teacher_identity,
                       view_identity,
)
from .records import decode_dense_logits, encode_topk, record_dtype
from .seeding import seeded_global_rng, view_fingerprint, view_seed

__all__ = [
    'canonical', 'config_diff', 'config_sha256', 'file_sha256', 'state_dict_sha256',
    'CacheManifest', 'TeacherCacheError', 'load_manifest', 'teacher_identity', 'view_identity',
    'decode_dense_logits', 'encode_topk', 'record_dtype', 'seeded_global_rng',
    'view_fingerprint', 'view_seed'
]
