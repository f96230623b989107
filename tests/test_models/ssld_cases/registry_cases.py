"""One minimal case per registered SSLD module that fits neither other case table.

Each entry is ``dict(type=..., cfg=...)``. ``tests/test_ssld/test_configs.py``
(``test_ssld_registry_cases``) builds every case through ``MODELS.build`` and runs it on a
batch mixing labeled and unlabeled samples.
"""

CASES = [
    dict(type='MixedLabelClsDataPreprocessor',
         cfg=dict(type='MixedLabelClsDataPreprocessor', mean=[1.0, 1.0, 1.0],
                  std=[2.0, 2.0, 2.0], num_classes=3, to_onehot=True)),
]
