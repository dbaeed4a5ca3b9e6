"""Splits: the 50/50 dev/test protocol, stratification and subsets are seeded and disjoint."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.splits import half_split, stratified_split, stratified_subset


def test_half_split_is_a_seeded_partition():
    a, b = half_split(872, 42)
    assert len(a) == len(b) == 436
    assert np.intersect1d(a, b).size == 0
    assert np.array_equal(np.sort(np.concatenate([a, b])), np.arange(872))
    a2, _ = half_split(872, 42)
    a3, _ = half_split(872, 43)
    assert np.array_equal(a, a2) and not np.array_equal(a, a3)


def test_stratified_split_keeps_balance_and_partitions():
    labels = np.array([1] * 700 + [0] * 300)
    parts = stratified_split(labels, (0.8, 0.1, 0.1), seed=0)
    assert [len(p) for p in parts] == [800, 100, 100]
    for p in parts:
        assert labels[p].mean() == pytest.approx(0.7, abs=0.011)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(1000))


def test_stratified_subset_size_balance_and_seed():
    labels = np.array([1] * 601 + [0] * 399)
    s = stratified_subset(labels, 101, seed=3)
    assert len(s) == 101 and len(np.unique(s)) == 101
    assert labels[s].mean() == pytest.approx(0.6, abs=0.02)
    assert np.array_equal(s, stratified_subset(labels, 101, seed=3))
    assert not np.array_equal(s, stratified_subset(labels, 101, seed=4))
    assert len(stratified_subset(labels, 5000, seed=0)) == 1000
