"""Augmentation: Tang et al.'s rules on whole words, copy-major storage, teacher labels, checks."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.augment import (
    AugmentSettings,
    augment_sentence,
    build_augmented,
    embedding_neighbours,
)
from study.errors import ArtifactError, UsageError
from study.run import Run


def _no_swap(w, rng):
    return None


def test_rules_act_on_whole_words():
    rng = np.random.default_rng(0)
    words = ["the", "unbelievably", "tedious", "plot", "of", "this", "film"]
    s = AugmentSettings(p_mask=0.5, p_swap=0.0, p_ng=0.0)
    outs = [augment_sentence(words, rng, s, "[MASK]", _no_swap).split() for _ in range(200)]
    assert all(len(o) == len(words) for o in outs)
    assert all(o[i] in (w, "[MASK]") for o in outs for i, w in enumerate(words))
    masked = np.mean([o[i] == "[MASK]" for o in outs for i in range(len(words))])
    assert 0.4 < masked < 0.6


def test_ngram_sampling_keeps_a_contiguous_span_of_1_to_5_words():
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(12)]
    s = AugmentSettings(p_mask=0.0, p_swap=0.0, p_ng=1.0)
    for _ in range(200):
        out = augment_sentence(words, rng, s, "[MASK]", _no_swap).split()
        assert 1 <= len(out) <= 5
        start = words.index(out[0])
        assert out == words[start : start + len(out)]


def test_embedding_neighbours_are_nearest_by_cosine():
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [-1, 0]], dtype=np.float32)
    nn = embedding_neighbours(emb, np.arange(5), k=1)
    assert nn[0].tolist() == [1] and nn[2].tolist() == [3] and nn[3].tolist() == [2]


def test_settings_are_validated():
    with pytest.raises(UsageError, match="--factor"):
        AugmentSettings(factor=0)
    with pytest.raises(UsageError, match="p-mask"):
        AugmentSettings(p_mask=1.5)


def test_build_and_load_augmented_set(tiny_run):
    manifest = build_augmented(tiny_run, AugmentSettings(factor=2, seed=0), device="cpu")
    run = Run(tiny_run)
    aug, logits = run.augmented()
    n = len(run.split("train"))
    assert len(aug) == 2 * n == manifest["rows"] and logits.shape == (2 * n, 2)
    assert (aug.labels == -1).all()
    assert run.augment_factor == 2
    assert manifest["unchanged_fraction"] < 0.9
    # copy-major: row c * n + i is derived from train row i (shares most words with it)
    train = run.split("train")
    i = 7
    for c in range(2):
        words = set(str(aug.texts[c * n + i]).split()) - {"[MASK]"}
        assert len(words & set(str(train.texts[i]).split())) >= min(1, len(words))
    # a subset of train keeps the matching augmented rows, copy-major
    data = run.pair_data(max_train_examples=100, subset_seed=0)
    assert len(data.augmented) == 200
    assert data.augmented_logits.shape == (200, 2)


def test_tampered_augmented_set_is_refused(tiny_run):
    build_augmented(tiny_run, AugmentSettings(factor=1), device="cpu")
    f = tiny_run / "augment" / "logits.npz"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="augment manifest"):
        Run(tiny_run).augmented()
