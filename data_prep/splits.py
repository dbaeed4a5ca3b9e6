"""Seeded splits: the study's 50/50 dev/test protocol, stratified splits and subsets."""

from __future__ import annotations

import numpy as np

__all__ = ["half_split", "stratified_split", "stratified_subset"]


def half_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` 50/50 at random: (first half, second half), each sorted.

    The protocol of the study we reproduce: GLUE SST-2 dev (872 rows) split at random with
    seed 42 into a dev half (model selection) and a test half (final numbers), 436 + 436.
    """
    perm = np.random.default_rng(seed).permutation(n)
    half = n // 2
    return np.sort(perm[:half]), np.sort(perm[half:])


def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split row indices by ``fractions`` (summing to 1) keeping each label's proportion.

    Each class is permuted with its own seeded stream and cut at the same fractions, so
    every part has (up to rounding) the overall label balance. Returns sorted index arrays.
    """
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
        for k, piece in enumerate(np.split(idx, cuts)):
            parts[k].append(piece)
    return [np.sort(np.concatenate(p)) for p in parts]


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` row indices drawn without replacement, stratified by label, sorted."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    if n < 1:
        raise ValueError(f"subset size must be >= 1, got {n}")
    frac = n / len(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    classes = np.unique(labels)
    for cls in classes:
        idx = np.flatnonzero(labels == cls)
        chosen.append(rng.choice(idx, size=int(round(frac * len(idx))), replace=False))
    out = np.concatenate(chosen)
    # Rounding can miss n by one per class: top up or trim deterministically.
    if len(out) < n:
        rest = np.setdiff1d(np.arange(len(labels)), out)
        out = np.concatenate([out, rng.choice(rest, size=n - len(out), replace=False)])
    return np.sort(out[:n])
