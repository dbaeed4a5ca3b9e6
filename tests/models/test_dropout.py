"""Property tests for the regularizers (awd-lstm's self-checks, as pytest)."""

import pytest
import torch
from torch import nn

from models.dropout import Dropout, EmbeddingDropout, LockedDropout, WeightDropout


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_locked_mask_shared_across_time_and_differs_across_batch():
    drop = LockedDropout(0.5).train()
    x = torch.ones(4, 7, 64)  # (B, T, C)
    y = drop(x, _gen())
    for b in range(4):
        assert torch.equal(y[b], y[b, :1].expand(7, 64))  # same mask at every time step
    assert not torch.equal(y[0], y[1])  # per sequence, not shared across the batch
    assert set(y.unique().tolist()) <= {0.0, 2.0}  # rescaled by 1 / (1 - p)


def test_dropouts_are_identity_in_eval_or_at_p0():
    x = torch.randn(3, 5, 8)
    for drop in (LockedDropout(0.5), Dropout(0.5)):
        assert drop.eval()(x, _gen()) is x
    for drop in (LockedDropout(0.0), Dropout(0.0)):
        assert drop.train()(x, _gen()) is x
    ids = torch.randint(0, 10, (3, 5))
    w = torch.randn(10, 8)
    ref = nn.functional.embedding(ids, w)
    assert torch.equal(EmbeddingDropout(0.5).eval()(ids, w, _gen()), ref)
    assert torch.equal(EmbeddingDropout(0.0).train()(ids, w, _gen()), ref)


def test_masks_follow_the_generator():
    x = torch.ones(4, 3, 16)
    drop = LockedDropout(0.3).train()
    assert torch.equal(drop(x, _gen(1)), drop(x, _gen(1)))
    assert not torch.equal(drop(x, _gen(1)), drop(x, _gen(2)))


def test_embedding_dropout_drops_whole_word_types():
    V, E = 20, 6
    w = torch.randn(V, E)
    ids = torch.tensor([[1, 2, 1, 3], [3, 1, 2, 2]])
    y = EmbeddingDropout(0.5).train()(ids, w, _gen(3))
    # equals awd-lstm's definition: a rescaled row mask applied to the matrix, then lookup
    rows = torch.empty(V).bernoulli_(0.5, generator=_gen(3)) / 0.5
    assert torch.equal(y, nn.functional.embedding(ids, w * rows[:, None]))
    for token in (1, 2, 3):  # every occurrence of a word type shares its fate
        at = y[ids == token]
        assert torch.equal(at, at[:1].expand_as(at))


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_weight_dropout_eval_equals_plain_rnn(cell):
    torch.manual_seed(0)
    plain = cell(5, 4, batch_first=True, bidirectional=True)
    wrapped = cell(5, 4, batch_first=True, bidirectional=True)
    wrapped.load_state_dict(plain.state_dict())
    wd = WeightDropout(wrapped, 0.5).eval()
    x = torch.randn(3, 6, 5)
    assert torch.allclose(wd(x)[0], plain(x)[0], atol=1e-6)
    keys = set(wd.state_dict())
    assert {"weight_hh_l0_raw", "weight_hh_l0_reverse_raw"} <= keys
    assert "module.weight_hh_l0" not in keys and "module.weight_ih_l0" in keys


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_weight_dropout_train_changes_only_hidden_to_hidden(cell):
    torch.manual_seed(0)
    rnn = cell(5, 4, batch_first=True, bidirectional=True)
    ih_before = {k: v.detach().clone() for k, v in rnn.named_parameters() if not k.startswith("weight_hh")}
    wd = WeightDropout(rnn, 0.5).train()
    x = torch.randn(3, 6, 5)
    out, _ = wd(x, generator=_gen())
    for name in ("weight_hh_l0", "weight_hh_l0_reverse"):
        raw, used = getattr(wd, f"{name}_raw"), getattr(rnn, name)
        dropped = used == 0
        assert dropped.any() and not dropped.all()
        assert torch.allclose(used[~dropped], raw[~dropped] * 2.0)  # kept entries rescaled
    for k, v in rnn.named_parameters():  # everything else is untouched and still trained
        if not k.startswith("weight_hh"):
            assert torch.equal(v, ih_before[k])
    # the output is exactly a plain RNN run with the dropped matrices
    plain = cell(5, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for k, v in ih_before.items():
            getattr(plain, k).copy_(v)
        plain.weight_hh_l0.copy_(rnn.weight_hh_l0)
        plain.weight_hh_l0_reverse.copy_(rnn.weight_hh_l0_reverse)
    assert torch.allclose(out, plain(x)[0], atol=1e-6)
    out.sum().backward()  # gradients reach the raw parameter
    assert wd.weight_hh_l0_raw.grad is not None and wd.weight_hh_l0_raw.grad.abs().sum() > 0


def test_weight_dropout_p0_is_plain_rnn_in_training():
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    x = torch.randn(2, 4, 5)
    ref = rnn(x)[0]
    wd = WeightDropout(rnn, 0.0).train()
    assert torch.allclose(wd(x, generator=_gen())[0], ref, atol=1e-6)
    assert rnn.weight_hh_l0.data_ptr() == wd.weight_hh_l0_raw.data_ptr()  # no copy at p = 0
