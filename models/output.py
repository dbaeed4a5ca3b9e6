"""The output contract where teacher and student meet (after TextBrewer's (logits, mask))."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["ModelOutput", "StudentOutput"]


class ModelOutput(NamedTuple):
    """What every classifier in the study returns.

    Attributes:
        logits: (B, num_labels) raw class scores (no softmax, no temperature).
        mask: (B, T) bool, True at real tokens of the input the logits came from.
    """

    logits: torch.Tensor
    mask: torch.Tensor


# The student returns exactly the shared contract; the alias names it at call sites.
StudentOutput = ModelOutput
