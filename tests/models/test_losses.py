"""Each loss against a plain reference formula, including the T² gradient convention."""

import math

import pytest
import torch

from models.losses import LOSSES, ce_loss, distill_loss, kl_loss, mse_loss


@pytest.fixture
def logits():
    torch.manual_seed(0)
    return torch.randn(5, 2) * 3, torch.randn(5, 2) * 3, torch.tensor([0, 1, 1, 0, 1])


def test_registry():
    assert set(LOSSES) == {"mse", "kl", "ce"}


@pytest.mark.parametrize("T", [1.0, 2.0])
def test_mse_reference(logits, T):
    s, t, _ = logits
    ref = sum((s[b, k] - t[b, k] / T) ** 2 for b in range(5) for k in range(2)) / 10
    assert torch.allclose(mse_loss(s, t, temperature=T), ref)


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
def test_kl_reference_and_t2_gradient_scale(logits, T):
    s, t, _ = logits
    s = s.clone().requires_grad_()
    loss = kl_loss(s, t, temperature=T)
    ref = 0.0
    for b in range(5):
        p = torch.softmax(t[b] / T, 0)
        q = torch.softmax(s[b].detach() / T, 0)
        ref += float((p * (p.log() - q.log())).sum())
    assert math.isclose(loss.item(), T**2 * ref / 5, rel_tol=1e-5)
    loss.backward()
    # d/ds [T² KL(p || q)] = T² · (q - p) / T / B = T (q - p) / B  (Hinton et al. 2015)
    expected = T * (torch.softmax(s.detach() / T, 1) - torch.softmax(t / T, 1)) / 5
    assert torch.allclose(s.grad, expected, atol=1e-6)


def test_ce_reference_and_unlabelled_rows(logits):
    s, _, y = logits
    ref = -sum(torch.log_softmax(s[b], 0)[y[b]] for b in range(5)) / 5
    assert torch.allclose(ce_loss(s, None, y), ref)
    y2 = y.clone()
    y2[[0, 3]] = -1
    ref2 = -sum(torch.log_softmax(s[b], 0)[y[b]] for b in (1, 2, 4)) / 3
    assert torch.allclose(ce_loss(s, None, y2), ref2)
    assert ce_loss(s, None, torch.full((5,), -1)).item() == 0.0


@pytest.mark.parametrize("soft", ["mse", "kl"])
def test_distill_loss_mixes_alpha(logits, soft):
    s, t, y = logits
    a = 0.3
    mixed = distill_loss(s, t, y, soft=soft, temperature=2.0, alpha=a)
    ref = a * LOSSES[soft](s, t, y, 2.0) + (1 - a) * ce_loss(s, None, y)
    assert torch.allclose(mixed, ref)
    assert torch.equal(distill_loss(s, t, None, soft=soft, alpha=1.0), LOSSES[soft](s, t, None, 1.0))
    assert torch.equal(distill_loss(s, t, y, soft=soft, alpha=0.0), ce_loss(s, None, y))


def test_losses_work_in_fp32_for_bf16_inputs(logits):
    s, t, y = logits
    for name, fn in LOSSES.items():
        out = fn(s.bfloat16(), t, y, 1.0)
        assert out.dtype == torch.float32, name
