"""Synthetic paired-trial data: a tiny vocabulary where token 5 means 'positive'."""

import numpy as np
import pytest
import torch

from data_prep.tokenized import TokenizedSplit
from study.train import PairData

VOCAB, DIM = 40, 8


def make_split(name: str, n: int, seed: int, labelled: bool = True) -> TokenizedSplit:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, size=n)
    labels = rng.integers(0, 2, size=n)
    rows = []
    for length, y in zip(lengths, labels, strict=True):
        row = rng.integers(6, VOCAB, size=length)
        row[0], row[-1] = 1, 2  # [CLS] ... [SEP]
        if y:
            row[rng.integers(1, length - 1)] = 5  # the signal
        rows.append(row)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return TokenizedSplit(
        name, np.concatenate(rows).astype(np.int32), offsets,
        labels.astype(np.int64) if labelled else np.full(n, -1, dtype=np.int64),
        np.array([f"s{i}" for i in range(n)]),
    )


def teacher_logits(split: TokenizedSplit) -> np.ndarray:
    has5 = np.array([5 in split.row(i) for i in range(len(split))])
    z = np.where(has5, 2.0, -2.0).astype(np.float32)
    return np.stack([-z, z], 1)


@pytest.fixture(scope="session")
def pair_data() -> PairData:
    torch.manual_seed(0)
    train, dev, test = make_split("train", 160, 1), make_split("dev", 48, 2), make_split("test", 40, 3)
    aug = make_split("augmented", 120, 4, labelled=False)
    return PairData(
        train, dev, test, teacher_logits(train), teacher_logits(dev), torch.randn(VOCAB, DIM), 0,
        augmented=aug, augmented_logits=teacher_logits(aug),
    )
