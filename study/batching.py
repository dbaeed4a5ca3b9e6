"""Length-bucketed batches: every batch holds sentences of one exact token length.

Exact-length batches need no padding, hence no packing and no attention masking, and a
recurrent student does exactly the work the sentences require. (The study we reproduce padded
every batch to 64 tokens; SST-2 train sentences average ~13 tokens, so ~80 % of its recurrent
steps read padding.) Training order is still random: rows are shuffled within each length,
chunked, and the chunks are shuffled, so consecutive batches have unrelated lengths.

The per-length 2-D tensors are built once per split (:class:`Buckets`); a planned batch is a
``(bucket, positions)`` pair, and fetching it is one ``index_select`` on the device. Plans are
numpy arrays computed from ``(seed, epoch)`` alone, so both arms of a pair, built from the same
seed, see the same batches in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from data_prep.tokenized import TokenizedSplit

__all__ = ["Bucket", "Buckets", "Plan", "train_plan", "eval_plan", "interleave", "plan_rng"]


@dataclass(frozen=True, eq=False)
class Bucket:
    """All rows of one split that have one token length.

    Attributes:
        length: L, the token count of every row.
        rows: (n,) int64 indices of the rows in the split, ascending.
        ids: (n, L) int64 token ids.
        labels: (n,) int64 gold labels (-1 where unknown).
        targets: (n, K) float32 teacher logits, or ``None``.
    """

    length: int
    rows: torch.Tensor
    ids: torch.Tensor
    labels: torch.Tensor
    targets: torch.Tensor | None


class Buckets:
    """A split grouped by exact token length, as tensors on one device, built once.

    Args:
        split: the tokenized rows.
        targets: optional (n, K) teacher logits aligned with the rows.
        device: where the tensors live.
    """

    def __init__(
        self,
        split: TokenizedSplit,
        targets: np.ndarray | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        n = len(split)
        if targets is not None and len(targets) != n:
            raise ValueError(f"{split.name}: {len(targets)} target rows for {n} rows")
        lengths = split.lengths
        if n and lengths.min() < 1:
            raise ValueError(f"{split.name}: empty rows cannot be batched")
        self.name = split.name
        self.size = n
        self.device = torch.device(device)
        #: bucket index and position inside the bucket of every row (numpy, for planning)
        self.row_bucket = np.zeros(n, dtype=np.int64)
        self.row_position = np.zeros(n, dtype=np.int64)
        self.buckets: list[Bucket] = []
        for b, length in enumerate(np.unique(lengths)):
            rows = np.nonzero(lengths == length)[0]  # ascending
            self.row_bucket[rows] = b
            self.row_position[rows] = np.arange(len(rows))
            gather = split.offsets[rows][:, None] + np.arange(length)  # (n_L, L)
            ids = torch.from_numpy(split.ids[gather].astype(np.int64))
            labels = torch.from_numpy(split.labels[rows].astype(np.int64))
            tgt = None
            if targets is not None:
                tgt = torch.from_numpy(np.ascontiguousarray(targets[rows], dtype=np.float32))
                tgt = tgt.to(self.device)
            self.buckets.append(
                Bucket(
                    int(length),
                    torch.from_numpy(rows).to(self.device),
                    ids.to(self.device),
                    labels.to(self.device),
                    tgt,
                )
            )
        self.sizes = np.array([len(b.rows) for b in self.buckets], dtype=np.int64)

    def __len__(self) -> int:
        return self.size


@dataclass(frozen=True)
class Plan:
    """An ordered list of batches, as flat numpy arrays (cheap to build, store and compare).

    Batch ``i`` takes positions ``positions[starts[i]:starts[i + 1]]`` of bucket
    ``bucket[i]`` of source ``source[i]`` (0: the training split, 1: the augmented set).
    """

    source: np.ndarray  # (nb,) int64
    bucket: np.ndarray  # (nb,) int64
    starts: np.ndarray  # (nb + 1,) int64
    positions: np.ndarray  # (starts[-1],) int64

    def __len__(self) -> int:
        return len(self.bucket)

    @property
    def sentences(self) -> int:
        return int(self.starts[-1])

    def batch_sizes(self) -> np.ndarray:
        return np.diff(self.starts)

    def tensors(self, device: torch.device | str) -> list[torch.Tensor]:
        """Each batch's positions as a device tensor (one host-to-device copy for all)."""
        flat = torch.from_numpy(self.positions).to(device)
        return list(flat.split(self.batch_sizes().tolist()))


def plan_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """The random stream of one epoch's plan: a pure function of (seed, epoch, stream)."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, stream]))


def _chunk(
    buckets: Buckets,
    rows: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None,
    source: int,
) -> Plan:
    """Group ``rows`` by bucket, optionally shuffle inside each, chunk into ≤ batch_size."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    b_of = buckets.row_bucket[rows]
    pos_of = buckets.row_position[rows]
    order = np.argsort(b_of, kind="stable")
    b_sorted, pos_sorted = b_of[order], pos_of[order]
    edges = np.flatnonzero(np.diff(b_sorted)) + 1
    bucket_ids, chunks = [], []
    for group_b, group_pos in zip(
        np.split(b_sorted, edges), np.split(pos_sorted, edges), strict=True
    ):
        if not len(group_pos):
            continue
        if rng is not None:
            group_pos = rng.permutation(group_pos)
        # near-equal chunks, none larger than batch_size (no tiny leftover batch per length)
        for part in np.array_split(group_pos, -(-len(group_pos) // batch_size)):
            bucket_ids.append(int(group_b[0]))
            chunks.append(part)
    n = len(chunks)
    if rng is not None and n:
        perm = rng.permutation(n)
        bucket_ids = [bucket_ids[i] for i in perm]
        chunks = [chunks[i] for i in perm]
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chunks], out=starts[1:])
    return Plan(
        np.full(n, source, dtype=np.int64),
        np.asarray(bucket_ids, dtype=np.int64),
        starts,
        np.concatenate(chunks).astype(np.int64) if chunks else np.zeros(0, dtype=np.int64),
    )


def train_plan(
    buckets: Buckets,
    batch_size: int,
    seed: int,
    epoch: int,
    rows: np.ndarray | None = None,
    source: int = 0,
    stream: int = 0,
) -> Plan:
    """One epoch of shuffled exact-length batches, reproducible from ``(seed, epoch)``.

    Args:
        buckets: the split.
        batch_size: maximum rows per batch.
        seed: the trial's seed.
        epoch: 0-based epoch (each epoch gets its own order).
        rows: restrict to these row indices (default: all rows).
        source: tag stored in the plan (0: training split, 1: augmented set).
        stream: separates independent random streams of the same (seed, epoch).
    """
    if rows is None:
        rows = np.arange(len(buckets))
    return _chunk(buckets, np.asarray(rows, dtype=np.int64), batch_size,
                  plan_rng(seed, epoch, stream), source)


def eval_plan(buckets: Buckets, batch_size: int) -> Plan:
    """All rows once, grouped by length, in a fixed order (no randomness)."""
    return _chunk(buckets, np.arange(len(buckets)), batch_size, None, 0)


def interleave(first: Plan, second: Plan, rng: np.random.Generator) -> Plan:
    """Merge two plans at random positions, keeping each plan's own batch order.

    Used for the distill arm with augmentation: its training-split batches stay exactly the
    baseline arm's batches, in the same relative order, with augmented batches in between.
    """
    n1, n2 = len(first), len(second)
    which = rng.permutation(np.r_[np.zeros(n1, dtype=np.int64), np.ones(n2, dtype=np.int64)])
    idx = np.empty(n1 + n2, dtype=np.int64)
    idx[which == 0] = np.arange(n1)
    idx[which == 1] = np.arange(n2) + n1
    source = np.r_[first.source, second.source][idx]
    bucket = np.r_[first.bucket, second.bucket][idx]
    sizes = np.r_[first.batch_sizes(), second.batch_sizes()]
    chunks = np.split(np.r_[first.positions, second.positions], np.cumsum(sizes)[:-1])
    ordered = [chunks[i] for i in idx]
    starts = np.zeros(n1 + n2 + 1, dtype=np.int64)
    np.cumsum(sizes[idx], out=starts[1:])
    positions = np.concatenate(ordered) if ordered else np.zeros(0, dtype=np.int64)
    return Plan(source, bucket, starts, positions)
