"""Tests of CrossAttentionProjector (ScaleKD's CAP)."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.utils import LayerNorm2d
from torch.testing import assert_close

from mmscalekd.models.connectors import CrossAttentionProjector
from mmscalekd.registry import MODELS

C_S, C_T, HEADS = 8, 16, 4
STUDENT_HW, QUERY_HW = (6, 4), (3, 2)


def _cap(**kwargs) -> CrossAttentionProjector:
    cfg = dict(type='CrossAttentionProjector', in_channels=C_S, embed_dims=C_T,
               student_hw=STUDENT_HW, query_hw=QUERY_HW, num_heads=HEADS, softmax_scale=5.0)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _manual_forward(cap: CrossAttentionProjector, x: torch.Tensor,
                    query_tokens: torch.Tensor) -> torch.Tensor:
    """The CAP equation written out independently with the module's weights (eval mode)."""
    b = x.shape[0]
    conv, norm = cap.stem[0], cap.stem[1]
    s = F.relu(norm(F.conv2d(x, conv.weight, conv.bias, padding=1))) + cap.pos_embed
    tokens = s.flatten(2).transpose(1, 2)  # (B, N_s, C_s)
    h_q, w_q = cap.query_hw
    grid = query_tokens.transpose(1, 2).reshape(b, C_T, h_q, w_q)
    pq = F.relu(cap.query_proj[0](grid)).flatten(2).transpose(1, 2)  # (B, N_q, C_t)
    d = C_T // HEADS
    q = (pq @ cap.q.weight.t() + cap.q.bias).view(b, -1, HEADS, d)
    k = (tokens @ cap.k.weight.t() + cap.k.bias).view(b, -1, HEADS, d)
    v = (tokens @ cap.v.weight.t() + cap.v.bias).view(b, -1, HEADS, d)
    logits = torch.einsum('bqhd,bkhd->bhqk', q, k) * d**-0.5 * cap.softmax_scale
    a = torch.einsum('bhqk,bkhd->bqhd', logits.softmax(-1), v).reshape(b, -1, C_T)
    y = F.layer_norm(cap.proj(a), (C_T, ), cap.norm.weight, cap.norm.bias, eps=1e-5)
    return y + cap.mlp.fc2(F.relu(cap.mlp.fc1(y)))


def test_build_shapes_and_parameter_names() -> None:
    cap = _cap()
    assert isinstance(cap, CrossAttentionProjector)
    out = cap(torch.randn(2, C_S, *STUDENT_HW))
    assert out.shape == (2, QUERY_HW[0] * QUERY_HW[1], C_T)
    assert torch.isfinite(out).all()
    params = dict(cap.named_parameters())
    assert params['pos_embed'].shape == (1, C_S, *STUDENT_HW)
    assert params['query'].shape == (6, C_T)
    assert params['stem.0.weight'].shape == (C_S, C_S, 3, 3) and 'stem.0.bias' in params
    assert isinstance(cap.stem[1], torch.nn.BatchNorm2d)
    assert params['query_proj.0.weight'].shape == (C_T, C_T, 1, 1)
    assert params['q.weight'].shape == (C_T, C_T)
    assert params['k.weight'].shape == (C_T, C_S) and params['v.weight'].shape == (C_T, C_S)
    assert params['proj.weight'].shape == (C_T, C_T) and params['norm.weight'].shape == (C_T, )
    assert params['mlp.fc1.weight'].shape == (4 * C_T, C_T)
    assert params['mlp.fc2.weight'].shape == (C_T, 4 * C_T)
    assert cap.norm.eps == 1e-5


def test_initialisation() -> None:
    cap = _cap(in_channels=32, embed_dims=64, student_hw=(8, 8), query_hw=(8, 8))
    assert abs(cap.pos_embed.std().item() - 0.02) < 0.003
    assert abs(cap.query.std().item() - 1.0) < 0.05
    assert abs(cap.query.mean().item()) < 0.05


def test_matches_manual_equation() -> None:
    cap = _cap().eval()
    x = torch.randn(2, C_S, *STUDENT_HW)
    query = cap.query.unsqueeze(0).expand(2, -1, -1)
    with torch.no_grad():
        assert_close(cap(x), _manual_forward(cap, x, query), rtol=1e-4, atol=1e-5)
    supplied = _cap(learnable_query=False).eval()
    supplied.load_state_dict({k: v for k, v in cap.state_dict().items() if k != 'query'})
    q_in = torch.randn(2, 6, C_T)
    with torch.no_grad():
        assert_close(supplied(x, q_in), _manual_forward(supplied, x, q_in), rtol=1e-4,
                     atol=1e-5)


@pytest.mark.parametrize('learnable_query', [True, False])
def test_fused_equals_reference_attention(learnable_query: bool) -> None:
    fused = _cap(learnable_query=learnable_query, fused_attention=True)
    ref = copy.deepcopy(fused)
    ref.fused_attention = False
    x = torch.randn(2, C_S, *STUDENT_HW)
    query = None if learnable_query else torch.randn(2, 6, C_T)
    out_f, out_r = fused(x, query), ref(x, query)
    assert_close(out_f, out_r, rtol=1e-5, atol=1e-5)
    out_f.square().sum().backward()
    out_r.square().sum().backward()
    for (name, p_f), (_, p_r) in zip(fused.named_parameters(), ref.named_parameters()):
        assert_close(p_f.grad, p_r.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_softmax_scale_changes_output() -> None:
    cap = _cap(softmax_scale=1.0).eval()
    sharp = copy.deepcopy(cap)
    sharp.scale = sharp.scale * 5.0
    x = torch.randn(2, C_S, *STUDENT_HW)
    assert not torch.allclose(cap(x), sharp(x), atol=1e-4)


def test_every_parameter_gets_gradient_learnable_query() -> None:
    cap = _cap()
    cap(torch.randn(2, C_S, *STUDENT_HW)).sum().backward()
    params = list(cap.named_parameters())
    assert len(params) == sum(p.grad is not None for _, p in params)
    assert cap.query.grad.abs().sum() > 0 and cap.pos_embed.grad.abs().sum() > 0


def test_every_parameter_and_query_get_gradient_supplied_query() -> None:
    cap = _cap(learnable_query=False, stem_norm='LN')
    assert cap.query is None and 'query' not in dict(cap.named_parameters())
    assert isinstance(cap.stem[1], LayerNorm2d) and cap.stem[1].eps == 1e-5
    query = torch.randn(2, 6, C_T, requires_grad=True)
    cap(torch.randn(2, C_S, *STUDENT_HW), query).sum().backward()
    params = list(cap.named_parameters())
    assert len(params) == sum(p.grad is not None for _, p in params)
    assert query.grad is not None and query.grad.abs().sum() > 0


def test_cnn_and_token_inputs_give_same_output() -> None:
    cap = _cap().eval()
    x = torch.randn(2, C_S, *STUDENT_HW)
    tokens = x.flatten(2).transpose(1, 2)  # (B, H*W, C), raster order
    assert_close(cap(x), cap(tokens))
    supplied = _cap(learnable_query=False).eval()
    q_tokens = torch.randn(2, 6, C_T)
    q_map = q_tokens.transpose(1, 2).reshape(2, C_T, *QUERY_HW)
    assert_close(supplied(x, q_tokens), supplied(tokens, q_map))


def test_samples_are_independent_in_eval() -> None:
    cap = _cap().eval()
    x = torch.randn(2, C_S, *STUDENT_HW)
    assert_close(cap(x)[1:], cap(x[1:]))


def test_other_grids_and_square_resampling() -> None:
    # Student grid larger than the query grid in one axis only, and an up-sampling case.
    cap = _cap(student_hw=(5, 7), query_hw=(2, 3), num_heads=2)
    assert cap(torch.randn(2, C_S, 5, 7)).shape == (2, 6, C_T)
    cap = _cap(student_hw=2, query_hw=4, num_heads=1, mlp_ratio=2.0)
    assert cap.mlp.fc1.out_features == 2 * C_T
    assert cap(torch.randn(2, 4, C_S)).shape == (2, 16, C_T)


def test_forward_errors_name_shapes() -> None:
    cap = _cap()
    with pytest.raises(ValueError) as err:
        cap(torch.randn(2, C_S, 5, 4))
    assert '(B, 8, 6, 4)' in str(err.value) and '(2, 8, 5, 4)' in str(err.value)
    with pytest.raises(ValueError) as err:
        cap(torch.randn(2, 3, *STUDENT_HW))
    assert '(2, 3, 6, 4)' in str(err.value)
    with pytest.raises(ValueError) as err:
        cap(torch.randn(2, 23, C_S))
    assert '(B, 24, 8)' in str(err.value) and '(2, 23, 8)' in str(err.value)
    with pytest.raises(ValueError, match='learnable_query=True'):
        cap(torch.randn(2, C_S, *STUDENT_HW), torch.randn(2, 6, C_T))
    supplied = _cap(learnable_query=False)
    with pytest.raises(ValueError, match='learnable_query=False'):
        supplied(torch.randn(2, C_S, *STUDENT_HW))
    with pytest.raises(ValueError) as err:
        supplied(torch.randn(2, C_S, *STUDENT_HW), torch.randn(2, 5, C_T))
    assert '(2, 6, 16)' in str(err.value) and '(2, 5, 16)' in str(err.value)
    with pytest.raises(ValueError) as err:
        supplied(torch.randn(2, C_S, *STUDENT_HW), torch.randn(3, 6, C_T))
    assert '(3, 6, 16)' in str(err.value)


@pytest.mark.parametrize('kwargs, exc, match', [
    (dict(embed_dims=16, num_heads=3), ValueError, 'divisible'),
    (dict(in_channels=0), ValueError, 'in_channels'),
    (dict(embed_dims=-4), ValueError, 'embed_dims'),
    (dict(num_heads=2.0), TypeError, 'num_heads'),
    (dict(student_hw=(6, )), TypeError, 'student_hw'),
    (dict(query_hw=(3, 0)), ValueError, r'query_hw\[1\]'),
    (dict(stem_norm='GN'), ValueError, "'BN', 'LN'"),
    (dict(softmax_scale=0.0), ValueError, 'softmax_scale'),
    (dict(mlp_ratio=0), ValueError, 'mlp_ratio'),
    (dict(learnable_query='yes'), TypeError, 'learnable_query'),
])
def test_build_errors(kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        _cap(**kwargs)
