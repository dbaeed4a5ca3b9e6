"""The student's regularizers, after AWD-LSTM (Merity et al. 2017, "Regularizing and Optimizing
LSTM Language Models") and fastai's ``WeightDropout``.

Every dropout here takes an optional ``generator``: the student owns one ``torch.Generator`` and
passes it to all its masks, so two students built with the same seed (the two arms of a paired
trial) draw identical dropout masks for identical batches, and nothing here touches the global
RNG. Every dropout is the identity when ``p == 0`` or the module is in eval mode.

Masks are drawn with ``bernoulli_`` on a small tensor and broadcast: a locked mask is
``(B, 1, C)``, not ``(B, T, C)``; an embedding mask is one number per word type. Drawing random
numbers is a visible cost on CPU (a full ``(B, T, C)`` Bernoulli draw per layer was ~8 % of a
training step), so the shape of a mask is also a speed choice.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Dropout", "LockedDropout", "EmbeddingDropout", "WeightDropout", "keep_mask"]


def keep_mask(
    shape: tuple[int, ...], p: float, like: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A rescaled Bernoulli keep-mask: each entry is ``1 / (1 - p)`` with probability ``1 - p``.

    Args:
        shape: shape of the mask.
        p: drop probability, in [0, 1).
        like: the mask takes this tensor's dtype and device.
        generator: random stream to draw from (global RNG when ``None``); must live on
            ``like``'s device.

    Returns:
        Tensor of ``shape``; its mean is 1 in expectation, so the layer needs no rescaling at
        eval time (inverted dropout).
    """
    mask = torch.empty(shape, dtype=like.dtype, device=like.device)
    return mask.bernoulli_(1.0 - p, generator=generator).div_(1.0 - p)


class Dropout(nn.Module):
    """Ordinary element-wise (inverted) dropout that draws from a given generator.

    ``nn.Dropout`` cannot take a generator; the classifier head uses this one so that its masks
    come from the student's own stream too.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * keep_mask(x.shape, self.p, x, generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LockedDropout(nn.Module):
    """Variational ("locked") dropout for ``batch_first`` sequences (Gal & Ghahramani 2016).

    One mask per sequence and feature, shared by every time step: the mask has shape
    ``(B, 1, C)`` for an input of shape ``(B, T, C)``. (awd-lstm's version draws ``(1, B, C)``,
    which is right for seq-first input and wrong for ``batch_first``: it would share masks
    across the batch and vary them over time.)
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Drop features of ``x`` (B, T, C) with one mask per sequence."""
        if not self.training or self.p == 0.0:
            return x
        B, _, C = x.shape
        return x * keep_mask((B, 1, C), self.p, x, generator)  # (B, T, C) * (B, 1, C)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EmbeddingDropout(nn.Module):
    """Embedding lookup that drops whole word types (Gal & Ghahramani 2016; Merity et al. 2017).

    Each step draws one keep/drop decision per row of the vocabulary (rescaled by
    ``1 / (1 - p)``), so every occurrence of a dropped word in the batch becomes the zero
    vector. Mathematically this is ``F.embedding(ids, weight * mask[:, None])`` as in awd-lstm's
    ``embedded_dropout``; we apply the row mask after the lookup (``mask[ids]``), which gives
    bit-identical values without materialising a masked copy of the (V, E) matrix every step.
    No ``padding_idx=-1`` is passed (awd-lstm's call did, which tells ``F.embedding`` to treat
    the *last* word type as padding); padded positions are masked later, by the attention.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p must be in [0, 1), got {p}")
        self.p = p

    def forward(
        self,
        input_ids: torch.Tensor,
        weight: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Embed ``input_ids`` (B, T) with ``weight`` (V, E), dropping word types in training.

        Returns:
            (B, T, E) embeddings.
        """
        x = F.embedding(input_ids, weight)  # (B, T, E)
        if not self.training or self.p == 0.0:
            return x
        rows = keep_mask((weight.shape[0],), self.p, weight, generator)  # (V,)
        return x * rows[input_ids].unsqueeze(-1)  # (B, T, E) * (B, T, 1)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class WeightDropout(nn.Module):
    """DropConnect on a recurrent module's hidden-to-hidden matrices (Merity et al. 2017).

    fastai's design: the trainable weight lives here as ``<name>_raw`` (an ``nn.Parameter``);
    before every forward the wrapped ``nn.LSTM``/``nn.GRU`` gets a freshly derived plain tensor
    ``<name>`` — the dropped weight in training, the raw weight itself (a view, no copy) in eval
    or when ``p == 0``. ``nn.RNNBase.__setattr__`` keeps its ``_flat_weights`` list in sync with
    such assignments, so the fused CPU (oneDNN) and cuDNN kernels see the new weight, and
    gradients flow back to ``<name>_raw``. Unlike awd-lstm's ``WeightDrop`` nothing is deleted
    from ``_parameters`` at forward time, which newer PyTorch versions reject.

    On CUDA the derived weights are not part of cuDNN's single flat buffer, so ``nn.RNNBase``
    warns on every call ("weights are not part of single contiguous chunk of memory") and would
    try to re-flatten; we make ``flatten_parameters`` a no-op on the wrapped module and silence
    that warning. cuDNN then copies the weights into its layout each call, which costs a few
    hundred kilobytes of device copies for our sizes.

    Args:
        module: the recurrent module to wrap (its other weights stay ordinary parameters).
        p: DropConnect probability, in [0, 1).
        names: the weights to drop; by default both directions' hidden-to-hidden matrices of a
            single-layer module.
    """

    def __init__(
        self,
        module: nn.RNNBase,
        p: float = 0.0,
        names: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"weight dropout p must be in [0, 1), got {p}")
        if names is None:
            names = tuple(n for n in ("weight_hh_l0", "weight_hh_l0_reverse") if hasattr(module, n))
        self.module = module
        self.p = p
        self.names = names
        for name in names:
            w = getattr(module, name)
            del module._parameters[name]
            self.register_parameter(f"{name}_raw", nn.Parameter(w.detach()))
            setattr(module, name, w.detach().clone())
        # The derived weights are plain tensors outside the flat buffer: re-flattening them would
        # either fail or undo our assignment, so flattening is disabled for the wrapped module.
        module.flatten_parameters = self._no_flatten

    @staticmethod
    def _no_flatten() -> None:
        return None

    def _set_weights(self, generator: torch.Generator | None) -> None:
        for name in self.names:
            raw = getattr(self, f"{name}_raw")
            if self.training and self.p > 0.0:
                w = raw * keep_mask(raw.shape, self.p, raw, generator)
            else:
                # A view is a plain Tensor (not a Parameter), so setattr does not register it as
                # a second parameter, and no copy is made.
                w = raw.view_as(raw)
            setattr(self.module, name, w)

    def forward(self, *args, generator: torch.Generator | None = None, **kwargs):
        """Derive the (dropped) weights, then run the wrapped module on ``args``."""
        self._set_weights(generator)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            return self.module(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"p={self.p}, names={self.names}"
