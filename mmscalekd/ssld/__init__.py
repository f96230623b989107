"""SSLD tooling (label-free distillation on mined unlabeled images): the mining library.

SSLD: Cui et al., "Beyond Self-Supervision: A Simple Yet Effective Network Distillation
Alternative to Improve Backbones", https://arxiv.org/abs/2103.05959. The distillation itself is
``ScaleKDDistiller(distill_stages=[], label_free=True)`` in :mod:`mmscalekd.models`.
"""
