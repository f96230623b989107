"""Cache records: layout, top-k encoding, and the full logits decoded from them."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmscalekd.teacher_cache.records import (
    REST_FLOOR,
    decode_dense_logits,
    encode_topk,
    record_dtype,
)


def _decode_all(fields: dict, num_classes: int) -> torch.Tensor:
    return torch.stack([decode_dense_logits(fields['index'][i], fields['logit'][i],
                                            float(fields['lse'][i]), num_classes)
                        for i in range(len(fields['lse']))])


def test_record_bytes_per_sample() -> None:
    # index int16 + value + lse fp32 + crc uint32: 4k + 8 bytes in fp16, 6k + 8 in fp32.
    assert record_dtype(10, 1000, 'float16').itemsize == 4 * 10 + 8
    assert record_dtype(10, 1000, 'float32').itemsize == 6 * 10 + 8
    assert record_dtype(1000, 1000, 'float16').itemsize == 4008
    # above 32767 classes the indices are int32
    assert record_dtype(10, 40000, 'float16')['index'].base == np.dtype('<i4')
    assert record_dtype(10, 21841, 'float16')['index'].base == np.dtype('<i2')


@pytest.mark.parametrize('bad, match', [(0, 'topk'), (11, 'topk'), (True, 'topk')])
def test_record_dtype_refuses_bad_topk(bad, match) -> None:
    with pytest.raises(ValueError, match=match):
        record_dtype(bad, 10)


def test_record_dtype_refuses_bad_dtype() -> None:
    with pytest.raises(ValueError, match="'bfloat16'"):
        record_dtype(3, 10, 'bfloat16')


def test_all_classes_in_fp32_decode_to_the_max_shifted_logits_exactly() -> None:
    torch.manual_seed(0)
    z = torch.randn(16, 10) * 4
    dense = _decode_all(encode_topk(z, 10, 'float32'), 10)
    assert torch.equal(dense, z - z.max(dim=1, keepdim=True).values)
    # which softmax-based losses treat exactly (bitwise) like z at temperature 1
    assert torch.equal(F.log_softmax(dense, dim=1), F.log_softmax(z, dim=1))
    torch.testing.assert_close(F.softmax(dense / 4.0, dim=1), F.softmax(z / 4.0, dim=1),
                               rtol=1e-6, atol=1e-7)


def test_topk_keeps_the_top_probabilities_and_spreads_the_rest_uniformly() -> None:
    torch.manual_seed(1)
    z = torch.randn(32, 10) * 3
    k = 3
    fields = encode_topk(z, k, 'float32')
    p_true = F.softmax(z, dim=1)
    p = F.softmax(_decode_all(fields, 10), dim=1)
    top = p_true.topk(k, dim=1)
    assert torch.equal(torch.from_numpy(fields['index'].astype(np.int64)), top.indices)
    torch.testing.assert_close(p.gather(1, top.indices), top.values, rtol=1e-5, atol=1e-7)
    rest = 1 - top.values.sum(dim=1, keepdim=True)
    mask = torch.ones_like(p, dtype=torch.bool).scatter_(1, top.indices, False)
    others = p[mask].view(32, 10 - k)
    torch.testing.assert_close(others, (rest / (10 - k)).expand(-1, 10 - k), rtol=1e-4,
                               atol=1e-7)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(32))


def test_fp16_probability_error_bound() -> None:
    # Values are z - max z in fp16 (relative rounding 2**-11); the error of p = exp(v - lse)
    # is at most p * |v| * 2**-11 <= e**-1 * 2**-11 ~ 1.8e-4 (lse is fp32).
    torch.manual_seed(2)
    z = torch.randn(200, 100) * 3
    p = F.softmax(_decode_all(encode_topk(z, 100, 'float16'), 100), dim=1)
    err = (p - F.softmax(z, dim=1)).abs().max().item()
    assert 0 < err < 1.9e-4


def test_rest_mass_rounding_to_zero_stays_finite() -> None:
    # the top class holds all the mass in float32: 1 - top mass rounds to 0
    z = torch.tensor([[60.0, 0.0, 0.0, 0.0]])
    dense = _decode_all(encode_topk(z, 1, 'float16'), 4)
    assert torch.isfinite(dense).all()
    p = F.softmax(dense, dim=1)
    assert p[0, 0] == 1.0 and float(p[0, 1:].sum()) <= 2 * REST_FLOOR


def test_encode_refuses_non_2d_logits() -> None:
    with pytest.raises(ValueError, match=r'\(B, K\)'):
        encode_topk(torch.zeros(10), 3)
