"""Student models: configuration, regularizers, attention pooling, the student, the losses."""

from models.attention import AttentionPooling
from models.config import CELLS, StudentConfig
from models.dropout import Dropout, EmbeddingDropout, LockedDropout, WeightDropout
from models.losses import LOSSES, ce_loss, distill_loss, kl_loss, mse_loss
from models.output import ModelOutput, StudentOutput
from models.student import Student

__all__ = [
    "AttentionPooling",
    "CELLS",
    "Dropout",
    "EmbeddingDropout",
    "LOSSES",
    "LockedDropout",
    "ModelOutput",
    "Student",
    "StudentConfig",
    "StudentOutput",
    "WeightDropout",
    "ce_loss",
    "distill_loss",
    "kl_loss",
    "mse_loss",
]
