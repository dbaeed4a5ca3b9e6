"""One trial's full configuration: architecture + training, flat and frozen.

A trial becomes a config by ``dataclasses.replace(base, **params)`` (see ``study.space``); the
same dataclass is what is saved beside an exported student.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from models.config import StudentConfig

__all__ = ["TrialConfig", "SOFT_LOSSES", "PRECISIONS"]

SOFT_LOSSES = ("mse", "kl")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ARMS = ("distill", "baseline")  # the two arms of a paired trial, in training order


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines one paired trial except its seed and data budget.

    Architecture fields mirror :class:`models.config.StudentConfig`; the rest configure the
    distill arm's loss and the optimiser (shared by both arms).

    Distill arm loss: ``alpha * soft_loss(student, teacher, T) + (1 - alpha) * ce(student, y)``;
    baseline arm loss: ``ce(student, y)``. See ``models.losses`` for the temperature conventions.
    """

    # architecture
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
    # distillation
    soft_loss: str = "mse"
    temperature: float = 1.0
    alpha: float = 1.0
    augment_factor: int = 0
    # optimisation (Adam, linear warm-up then cosine decay, gradient clipping)
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 3
    warmup: float = 0.2
    clip: float = 10.0
    beta1: float = 0.8
    beta2: float = 0.99
    weight_decay: float = 0.0
    precision: str = "auto"

    def __post_init__(self) -> None:
        _ = self.student  # validates the architecture fields (raises ValueError)
        if self.soft_loss not in SOFT_LOSSES:
            raise ValueError(f"soft_loss must be one of {SOFT_LOSSES}, got {self.soft_loss!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.augment_factor < 0:
            raise ValueError(f"augment_factor must be >= 0, got {self.augment_factor}")
        if not self.lr > 0 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError("lr must be > 0, batch_size and epochs >= 1")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def student(self) -> StudentConfig:
        """The architecture part, as the student model takes it."""
        names = {f.name for f in fields(StudentConfig)}
        return StudentConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrialConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        return cls(**data)
