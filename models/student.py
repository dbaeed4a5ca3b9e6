"""The recurrent student: frozen teacher embeddings -> stacked BiLSTM/BiGRU -> attention -> MLP.

Layout (nanoGPT-style small modules, each built from the one frozen ``StudentConfig``)::

    ids (B, T) --EmbeddingDropout--> (B, T, E) --LockedDropout(input)-->
      [WeightDropout(Bi-RNN) --LockedDropout(layer)-->] x (layers - 1) --WeightDropout(Bi-RNN)-->
      (B, T, 2H) --AttentionPooling--> (B, 2H) --ClassifierHead--> (B, num_labels)

Padding never leaks: with ``lengths`` the batch is packed, so each backward RNN starts at its
sequence's last real token (the study we reproduce padded to 64 without packing, so its
backward direction read up to 60 padding vectors first), and the attention masks padded
positions with ``-inf``. Training batches hold sentences of one exact length and pass
``lengths=None``: no padding, no packing, no masking work.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.attention import AttentionPooling
from models.config import StudentConfig
from models.dropout import Dropout, EmbeddingDropout, LockedDropout, WeightDropout
from models.output import StudentOutput

__all__ = ["Student", "RecurrentLayer", "ClassifierHead"]

_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentLayer(nn.Module):
    """One bidirectional single-layer LSTM/GRU with DropConnect on its hidden-to-hidden weights.

    One ``nn.LSTM`` per layer (rather than ``num_layers=n``) so that locked dropout can sit
    between layers and weight dropout can wrap each layer (Merity et al. 2017).
    """

    def __init__(self, config: StudentConfig, input_dim: int) -> None:
        super().__init__()
        rnn = _CELLS[config.cell](input_dim, config.hidden, batch_first=True, bidirectional=True)
        self.rnn = WeightDropout(rnn, config.weight_dropout)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Encode ``x`` (B, T, C_in) into (B, T, 2H); positions past ``lengths`` come out as 0.

        Args:
            x: input states.
            lengths: (B,) int64 on the CPU, or ``None`` when every row is ``T`` long.
            generator: random stream for the weight-dropout mask.
        """
        if lengths is None:
            out, _ = self.rnn(x, generator=generator)  # (B, T, 2H)
            return out
        T = x.shape[1]
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed, generator=generator)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, 2H)
        return out


class ClassifierHead(nn.Module):
    """Dropout -> Linear(2H -> head_hidden) -> ReLU -> Dropout -> Linear(-> num_labels)."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.drop = Dropout(config.output_dropout)
        self.fc1 = nn.Linear(2 * config.hidden, config.head_hidden)
        self.fc2 = nn.Linear(config.head_hidden, config.num_labels)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = torch.relu(self.fc1(self.drop(x, generator)))  # (B, head_hidden)
        return self.fc2(self.drop(x, generator))  # (B, num_labels)


class Student(nn.Module):
    """A recurrent student over the teacher's frozen word embeddings.

    Args:
        config: the architecture.
        embeddings: (V, E) float tensor, the teacher's word-embedding matrix. It is registered
            as a non-persistent buffer *without copying*, so the two arms of a pair (and every
            student of a worker) share one matrix; it is not trained, not in ``state_dict``,
            and counted in ``num_parameters()`` but not in ``num_parameters(trainable=True)``.
        pad_id: the tokenizer's padding id (used by callers that pad batches; padded positions
            are excluded through ``lengths``, never by comparing ids).
        seed: seeds the student's own ``torch.Generator``, from which every dropout mask is
            drawn; two students with the same seed draw the same masks for the same batches.
    """

    def __init__(
        self, config: StudentConfig, embeddings: torch.Tensor, pad_id: int = 0, seed: int = 0
    ) -> None:
        super().__init__()
        if embeddings.dim() != 2 or not embeddings.is_floating_point():
            raise ValueError(f"embeddings must be a (V, E) float tensor, got {tuple(embeddings.shape)}")
        self.config = config
        self.pad_id = pad_id
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.register_buffer("embedding", embeddings.detach(), persistent=False)  # (V, E)
        E = embeddings.shape[1]
        self.embedding_dropout = EmbeddingDropout(config.embedding_dropout)
        self.input_dropout = LockedDropout(config.input_dropout)
        self.layer_dropout = LockedDropout(config.layer_dropout)
        self.layers = nn.ModuleList(
            RecurrentLayer(config, E if i == 0 else 2 * config.hidden) for i in range(config.layers)
        )
        self.attention = AttentionPooling(2 * config.hidden, config.attention_size)
        self.head = ClassifierHead(config)

    # -- random stream ---------------------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """The student's dropout stream on ``device`` (created, seeded, on first use there)."""
        device = torch.device(device)
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator

    def reset_generator(self) -> None:
        """Restart the dropout stream from ``seed`` at the next training forward."""
        self._generator = None

    # -- sizes -----------------------------------------------------------------------------
    def num_parameters(self, trainable: bool = False) -> int:
        """Parameter count; the frozen embedding matrix is included unless ``trainable``."""
        n = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return n if trainable else n + self.embedding.numel()

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Detached clones of the trainable parameters (what a checkpoint needs)."""
        return {k: v.detach().clone() for k, v in self.named_parameters() if v.requires_grad}

    # -- forward ---------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> StudentOutput:
        """Classify a batch.

        Args:
            input_ids: (B, T) int64 token ids.
            lengths: (B,) real lengths (right padding), or ``None`` when every row is ``T``
                tokens long (an exact-length batch: no packing, no masking).

        Returns:
            ``StudentOutput(logits (B, num_labels), mask (B, T) bool)``.
        """
        B, T = input_ids.shape
        g = self.generator(input_ids.device) if self.training else None
        if lengths is None:
            mask = None
            cpu_lengths = None
        else:
            mask = torch.arange(T, device=input_ids.device) < lengths.to(input_ids.device)[:, None]
            cpu_lengths = lengths.to("cpu", torch.int64)  # pack_padded_sequence wants CPU lengths
        x = self.embedding_dropout(input_ids, self.embedding, g)  # (B, T, E)
        x = self.input_dropout(x, g)
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.layer_dropout(x, g)
            x = layer(x, cpu_lengths, g)  # (B, T, 2H)
        pooled = self.attention(x, mask)  # (B, 2H)
        logits = self.head(pooled, g)  # (B, num_labels)
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=input_ids.device)
        return StudentOutput(logits, mask)
