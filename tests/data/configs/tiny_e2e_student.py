# The tiny e2e student on its own: a plain mmpretrain ImageClassifier (tests/test_e2e.py evaluates
# the checkpoint extracted from tiny_e2e_scalekd.py with it).
_base_ = ['./tiny_e2e_base.py']

model = {{_base_.student}}
