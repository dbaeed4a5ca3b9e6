"""Property tests for the recurrent student."""

import pytest
import torch

from models.config import StudentConfig
from models.student import Student

V, E = 30, 8


def _student(cell="lstm", seed=0, **kw):
    torch.manual_seed(0)
    emb = torch.randn(V, E)
    cfg = StudentConfig(cell=cell, layers=2, hidden=6, head_hidden=5, **kw)
    return Student(cfg, emb, pad_id=0, seed=seed), emb


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention_size", [0, 4])
def test_packed_padded_batch_equals_each_sequence_alone(cell, attention_size):
    model, _ = _student(cell, attention_size=attention_size)
    model.eval()
    lengths = torch.tensor([5, 2, 7, 1])
    ids = torch.randint(1, V, (4, 7))
    ids[torch.arange(7) >= lengths[:, None]] = 0  # right padding
    out = model(ids, lengths)
    assert out.logits.shape == (4, 2) and out.mask.shape == (4, 7)
    assert torch.equal(out.mask, torch.arange(7) < lengths[:, None])
    for b, n in enumerate(lengths.tolist()):
        alone = model(ids[b : b + 1, :n]).logits  # exact length, no packing
        assert torch.allclose(out.logits[b], alone[0], atol=1e-5)
    # padding content cannot leak into the logits
    ids2 = ids.clone()
    ids2[~out.mask] = 7
    assert torch.allclose(model(ids2, lengths).logits, out.logits, atol=1e-6)


def test_same_seed_same_dropout_stream():
    kw = dict(embedding_dropout=0.2, weight_dropout=0.3, input_dropout=0.3, output_dropout=0.3)
    a, _ = _student(seed=5, **kw)
    b, _ = _student(seed=5, **kw)
    c, _ = _student(seed=6, **kw)
    ids = torch.randint(1, V, (3, 6))
    for m in (a, b, c):
        m.train()
    la, lb, lc = a(ids).logits, b(ids).logits, c(ids).logits
    assert torch.equal(la, lb)
    assert not torch.equal(la, lc)
    assert torch.equal(a(ids).logits, b(ids).logits)  # streams advance in step
    a.eval()
    assert torch.equal(a(ids).logits, a(ids).logits)  # eval is deterministic


def test_embedding_is_shared_frozen_and_counted():
    a, emb = _student()
    b = Student(a.config, emb)
    assert a.embedding.data_ptr() == emb.data_ptr() == b.embedding.data_ptr()
    assert "embedding" not in a.state_dict()
    assert not a.embedding.requires_grad
    trainable = sum(p.numel() for p in a.parameters() if p.requires_grad)
    assert a.num_parameters(trainable=True) == trainable
    assert a.num_parameters() == trainable + V * E
    a.train()
    a(torch.randint(1, V, (2, 4))).logits.sum().backward()
    assert all(p.grad is not None for p in a.parameters())


def test_state_dict_round_trip():
    a, emb = _student(weight_dropout=0.5)
    b = Student(a.config, emb)
    b.load_state_dict(a.trainable_state_dict())
    a.eval(), b.eval()
    ids = torch.randint(1, V, (2, 5))
    assert torch.equal(a(ids).logits, b(ids).logits)
