"""The student's architecture as one frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StudentConfig", "CELLS"]

CELLS = ("lstm", "gru")


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


@dataclass(frozen=True)
class StudentConfig:
    """Architecture of a recurrent student (defaults: the study we reproduce, GRU/LSTM x2).

    Attributes:
        cell: ``"lstm"`` or ``"gru"``.
        layers: stacked bidirectional layers, 1 to 4.
        hidden: units per direction (the encoder's output is ``2 * hidden`` wide).
        embedding_dropout: probability of dropping a whole word type (Gal & Ghahramani 2016).
        input_dropout: locked (variational) dropout on the embedded input.
        layer_dropout: locked dropout between recurrent layers.
        weight_dropout: DropConnect on the hidden-to-hidden matrices (Merity et al. 2017).
        output_dropout: dropout before each linear layer of the classifier head.
        attention_size: 0 for DeepMoji's single learned vector; otherwise the width of W in
            ``score = v^T tanh(W h)``.
        head_hidden: width of the classifier's hidden layer.
        num_labels: output logits.
    """

    cell: str = "lstm"
    layers: int = 2
    hidden: int = 384
    embedding_dropout: float = 0.0
    input_dropout: float = 0.25
    layer_dropout: float = 0.25
    weight_dropout: float = 0.0
    output_dropout: float = 0.25
    attention_size: int = 0
    head_hidden: int = 512
    num_labels: int = 2

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if not 1 <= self.layers <= 4:
            raise ValueError(f"layers must be in 1..4, got {self.layers}")
        if self.hidden < 1 or self.head_hidden < 1 or self.num_labels < 2:
            raise ValueError("hidden, head_hidden must be >= 1 and num_labels >= 2")
        if self.attention_size < 0:
            raise ValueError(f"attention_size must be >= 0, got {self.attention_size}")
        for name in ("embedding_dropout", "input_dropout", "layer_dropout", "weight_dropout",
                     "output_dropout"):
            _check_prob(name, getattr(self, name))
