"""Length-bucketed batching: exact lengths, full coverage, reproducible order."""

import numpy as np
import torch

from data_prep.tokenized import TokenizedSplit
from study.batching import Buckets, eval_plan, interleave, plan_rng, train_plan


def make_split(name: str, n: int, seed: int) -> TokenizedSplit:
    """``n`` random rows of 3-8 tokens."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, size=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = rng.integers(1, 40, size=int(offsets[-1])).astype(np.int32)
    return TokenizedSplit(name, ids, offsets, rng.integers(0, 2, size=n),
                          np.array([f"s{i}" for i in range(n)]))


def _rows_of(buckets, plan):
    out = []
    for b, pos in zip(plan.bucket.tolist(), plan.tensors("cpu"), strict=True):
        out.append(buckets.buckets[b].rows.index_select(0, pos))
    return out


def test_buckets_hold_the_split_rows():
    split = make_split("train", 50, 0)
    buckets = Buckets(split, np.arange(100, dtype=np.float32).reshape(50, 2))
    for bucket in buckets.buckets:
        assert bucket.ids.shape == (len(bucket.rows), bucket.length)
        for r, row_ids in zip(bucket.rows.tolist(), bucket.ids, strict=True):
            assert np.array_equal(row_ids.numpy(), split.row(r))
            assert bucket.labels[bucket.rows.tolist().index(r)] == split.labels[r]
        assert torch.equal(bucket.targets[:, 0], bucket.rows.float() * 2)


def test_train_plan_covers_every_row_once_in_exact_length_batches():
    split = make_split("train", 200, 0)
    buckets = Buckets(split)
    plan = train_plan(buckets, 16, seed=3, epoch=0)
    rows = _rows_of(buckets, plan)
    assert sorted(torch.cat(rows).tolist()) == list(range(200))
    assert max(len(r) for r in rows) <= 16
    for r in rows:  # one exact length per batch: no padding anywhere
        assert len({int(split.lengths[i]) for i in r}) == 1
    assert len({int(b) for b in plan.bucket[:8]}) > 1  # batch order is shuffled across lengths


def test_plans_are_reproducible_and_change_per_epoch():
    buckets = Buckets(make_split("train", 200, 0))
    a, b = train_plan(buckets, 16, 3, 0), train_plan(buckets, 16, 3, 0)
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.bucket, b.bucket)
    c = train_plan(buckets, 16, 3, 1)
    assert not np.array_equal(a.positions, c.positions)
    d = train_plan(buckets, 16, 4, 0)
    assert not np.array_equal(a.positions, d.positions)


def test_eval_plan_is_fixed_and_complete():
    buckets = Buckets(make_split("dev", 60, 1))
    plan = eval_plan(buckets, 8)
    rows = torch.cat(_rows_of(buckets, plan)).tolist()
    assert sorted(rows) == list(range(60))
    assert np.array_equal(plan.positions, eval_plan(buckets, 8).positions)
    assert list(plan.bucket) == sorted(plan.bucket)


def test_subset_rows_and_interleave_keep_each_order():
    train = Buckets(make_split("train", 80, 0))
    aug = Buckets(make_split("augmented", 80, 1))
    base = train_plan(train, 8, 0, 0)
    extra = train_plan(aug, 8, 0, 0, rows=np.arange(0, 80, 2), source=1)
    assert sorted(torch.cat(_rows_of(aug, extra)).tolist()) == list(range(0, 80, 2))
    merged = interleave(base, extra, plan_rng(0, 0, 2))
    assert len(merged) == len(base) + len(extra)
    chunks = np.split(merged.positions, merged.starts[1:-1])
    for source, plan in ((0, base), (1, extra)):
        sel = merged.source == source
        assert np.array_equal(merged.bucket[sel], plan.bucket)
        got = [c for c, s in zip(chunks, sel, strict=True) if s]
        want = np.split(plan.positions, plan.starts[1:-1])
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
