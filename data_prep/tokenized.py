"""A tokenized split held as one flat id array plus offsets (ragged rows, no padding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TokenizedSplit"]


@dataclass(frozen=True, eq=False)
class TokenizedSplit:
    """Token ids of one split, stored ragged.

    Row ``i`` is ``ids[offsets[i]:offsets[i + 1]]`` and includes the special tokens
    ([CLS] ... [SEP]) exactly as the teacher's tokenizer produced them.

    Attributes:
        name: split name (``train``, ``dev``, ``test`` or ``augmented``).
        ids: int32 array of all token ids, rows concatenated.
        offsets: int64 array of length ``n + 1``; ``offsets[0] == 0``.
        labels: int64 array of length ``n`` with values in {0, 1}; -1 where unknown
            (augmented rows have no gold label).
        texts: array of str, the raw sentences.
    """

    name: str
    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    texts: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.offsets.shape != (n + 1,) or len(self.texts) != n:
            raise ValueError(f"{self.name}: offsets/labels/texts lengths disagree")
        if n and (self.offsets[0] != 0 or self.offsets[-1] != len(self.ids)):
            raise ValueError(f"{self.name}: offsets do not cover ids")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """Number of tokens in every row (int64, shape (n,))."""
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, indices: np.ndarray, name: str | None = None) -> TokenizedSplit:
        """The rows ``indices`` (in that order) as a new split."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(indices):
            ids = np.concatenate([self.row(int(i)) for i in indices]).astype(np.int32)
        else:
            ids = np.zeros(0, dtype=np.int32)
        return TokenizedSplit(
            name or self.name, ids, offsets, self.labels[indices].copy(), self.texts[indices].copy()
        )

    def padded(self, indices: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``indices`` right-padded with ``pad_id``: (ids (B, T) int64, lengths (B,) int64)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        width = int(lengths.max()) if len(indices) else 0
        out = np.full((len(indices), width), pad_id, dtype=np.int64)
        for r, i in enumerate(indices):
            out[r, : lengths[r]] = self.row(int(i))
        return out, lengths.astype(np.int64)

    # -- storage ---------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez`` (no pickled objects)."""
        return {
            "ids": self.ids.astype(np.int32),
            "offsets": self.offsets.astype(np.int64),
            "labels": self.labels.astype(np.int64),
            "texts": np.asarray(self.texts, dtype=np.str_),
        }

    @classmethod
    def from_arrays(cls, name: str, arrays) -> TokenizedSplit:
        return cls(
            name,
            np.asarray(arrays["ids"], dtype=np.int32),
            np.asarray(arrays["offsets"], dtype=np.int64),
            np.asarray(arrays["labels"], dtype=np.int64),
            np.asarray(arrays["texts"]),
        )
