"""Property tests for DeepMoji-style attention pooling."""

import pytest
import torch

from models.attention import AttentionPooling


@pytest.mark.parametrize("size", [0, 8])
def test_padded_positions_cannot_reach_the_output(size):
    torch.manual_seed(0)
    att = AttentionPooling(6, size)
    h = torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    pooled, weights = att(h, mask, return_weights=True)
    h2 = h.clone()
    h2[~mask] = torch.randn(int((~mask).sum()), 6) * 100
    pooled2, weights2 = att(h2, mask, return_weights=True)
    assert torch.equal(pooled, pooled2) and torch.equal(weights, weights2)
    assert torch.all(weights[~mask] == 0)
    assert torch.allclose(weights.sum(1), torch.ones(3))
    assert torch.allclose(pooled[2], h[2, 0])  # one real token: its state is the output


@pytest.mark.parametrize("size", [0, 8])
def test_no_mask_equals_all_true_mask_and_matches_formula(size):
    torch.manual_seed(0)
    att = AttentionPooling(6, size)
    h = torch.randn(2, 4, 6)
    full = torch.ones(2, 4, dtype=torch.bool)
    assert torch.allclose(att(h), att(h, full))
    states = h if size == 0 else torch.tanh(h @ att.proj.weight.T + att.proj.bias)
    scores = states @ att.v
    ref = (torch.softmax(scores, 1)[..., None] * h).sum(1)
    assert torch.allclose(att(h), ref, atol=1e-6)


def test_rows_far_below_the_global_max_do_not_underflow():
    # DeepMoji's exp(score - global max) gives 0/0 here; a per-row softmax does not.
    att = AttentionPooling(1, 0)
    with torch.no_grad():
        att.v.fill_(1.0)
    h = torch.tensor([[[1000.0], [999.0]], [[-1000.0], [-1001.0]]])  # (B=2, T=2, C=1)
    pooled, weights = att(h, torch.ones(2, 2, dtype=torch.bool), return_weights=True)
    assert torch.isfinite(pooled).all() and torch.allclose(weights.sum(1), torch.ones(2))
