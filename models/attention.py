"""Attention pooling over a sequence of encoder states, after DeepMoji (Felbo et al. 2017)."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["AttentionPooling"]


class AttentionPooling(nn.Module):
    """Pool ``(B, T, C)`` states into ``(B, C)`` with a learned softmax over time.

    Scores:

    - ``attention_size == 0``: DeepMoji's ``AttentionWeightedAverage``, one learned vector,
      ``score_t = h_t · v``;
    - ``attention_size == A > 0``: ``score_t = vᵀ tanh(W h_t + b)`` with ``W`` of shape (A, C)
      (Bahdanau-style; Yang et al. 2016's word attention).

    Weights are ``softmax_t(score_t)`` over the real positions only: padded positions get
    ``-inf`` before the softmax, so their weight is exactly 0 and their content cannot reach the
    output. DeepMoji subtracted the global maximum and multiplied by the mask after ``exp``;
    a row whose scores all sit far below the batch maximum then underflows to 0/0 = NaN.
    ``softmax`` already subtracts each row's own maximum, which is all the stability needed.

    Args:
        input_dim: C, the width of the states (``2 * hidden`` for a bidirectional encoder).
        attention_size: A, or 0 for the single-vector form.
    """

    def __init__(self, input_dim: int, attention_size: int = 0) -> None:
        super().__init__()
        if attention_size < 0:
            raise ValueError(f"attention_size must be >= 0, got {attention_size}")
        self.attention_size = attention_size
        if attention_size == 0:
            self.proj = None
            self.v = nn.Parameter(torch.empty(input_dim))
            # DeepMoji initialises v uniformly (Glorot); the bound keeps initial scores O(1).
            bound = 1.0 / math.sqrt(input_dim)
            nn.init.uniform_(self.v, -bound, bound)
        else:
            self.proj = nn.Linear(input_dim, attention_size)
            self.v = nn.Parameter(torch.empty(attention_size))
            bound = 1.0 / math.sqrt(attention_size)
            nn.init.uniform_(self.v, -bound, bound)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Unnormalised scores (B, T) for states ``h`` (B, T, C)."""
        if self.proj is None:
            return h @ self.v  # (B, T, C) @ (C,) -> (B, T)
        return torch.tanh(self.proj(h)) @ self.v  # (B, T, A) @ (A,) -> (B, T)

    def forward(
        self,
        h: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Pool the states.

        Args:
            h: (B, T, C) states.
            mask: (B, T) bool, True at real tokens; ``None`` means every position is real
                (an exact-length batch), which skips the masking work.
            return_weights: also return the attention weights.

        Returns:
            pooled (B, C), or (pooled, weights (B, T)) when ``return_weights``.
        """
        scores = self.scores(h)  # (B, T)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        # Softmax in fp32 even under autocast: bf16 has 8 mantissa bits, too few for weights
        # that must sum to 1 over up to 64 positions.
        weights = torch.softmax(scores.float(), dim=1).to(h.dtype)  # (B, T)
        pooled = torch.bmm(weights.unsqueeze(1), h).squeeze(1)  # (B, 1, T) @ (B, T, C) -> (B, C)
        return (pooled, weights) if return_weights else pooled
