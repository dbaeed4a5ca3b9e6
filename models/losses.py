"""Training losses, looked up by name (TextBrewer-style registry); pure functions.

Notation: ``s`` are the student's logits (B, K), ``t`` the teacher's raw logits (B, K), ``y`` the
gold labels (B,) with ``-1`` for rows without one (teacher-labelled augmented rows), ``T`` the
temperature. Every registry entry has the signature
``loss(student_logits, teacher_logits, labels, temperature) -> scalar tensor`` and ignores the
arguments it does not need. Losses are computed in fp32 whatever the autocast dtype of ``s``.

Distill arm::

    L = alpha * soft(s, t, T) + (1 - alpha) * ce(s, y)

Baseline arm: ``L = ce(s, y)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["LOSSES", "mse_loss", "kl_loss", "ce_loss", "distill_loss"]


def mse_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Logit matching: ``mean_{b,k} (s_bk - t_bk / T)^2``.

    Tang et al. 2019 ("Distilling Task-Specific Knowledge from BERT into Simple Neural
    Networks") regress the teacher's logits with T = 1; the study we reproduce divided the
    teacher's logits by T and left the student's alone, which is the convention here (the
    student learns logits T times smaller, i.e. a softer classifier). The mean runs over the
    batch *and* the K logits (``nn.MSELoss``), i.e. Tang et al.'s squared L2 norm divided by K.
    """
    s = student_logits.float()
    return F.mse_loss(s, teacher_logits.float() / temperature)


def kl_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Soft targets: ``T^2 * (1/B) sum_b KL(softmax(t_b / T) || softmax(s_b / T))``.

    Hinton et al. 2015 ("Distilling the Knowledge in a Neural Network"): both distributions are
    softened by T, and the loss is multiplied by ``T^2`` so that its gradient with respect to
    the student's logits keeps the same scale as T changes (the gradient of the KL term alone
    shrinks as ``1/T^2`` for large T). ``batchmean``: summed over classes, averaged over rows,
    which is the true KL per example.
    """
    s = student_logits.float() / temperature
    t = teacher_logits.float() / temperature
    kl = F.kl_div(F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1), reduction="batchmean",
                  log_target=True)
    return kl * temperature**2


def ce_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Label cross-entropy: ``-(1/N) sum_{b: y_b >= 0} log softmax(s_b)[y_b]``, no temperature.

    Rows with ``y_b = -1`` (no gold label) are skipped and ``N`` counts the labelled rows; a
    batch with none gives 0 (not NaN). The division is done on the device, so no host sync.
    """
    if labels is None:
        raise ValueError("ce_loss needs labels")
    s = student_logits.float()
    total = F.cross_entropy(s, labels, ignore_index=-1, reduction="sum")
    return total / (labels >= 0).sum().clamp(min=1)


LossFn = Callable[..., torch.Tensor]

#: Losses by name. ``mse``/``kl`` are the soft (distillation) losses, ``ce`` the label loss.
LOSSES: dict[str, LossFn] = {"mse": mse_loss, "kl": kl_loss, "ce": ce_loss}


def distill_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None,
    soft: str = "mse",
    temperature: float = 1.0,
    alpha: float = 1.0,
) -> torch.Tensor:
    """The distill arm's loss: ``alpha * LOSSES[soft](s, t, T) + (1 - alpha) * ce(s, y)``.

    With ``alpha == 1`` (the pure form the study we reproduce used) the label term is not
    computed at all, so ``labels`` may be ``None``; with ``alpha == 0`` the soft term is skipped.

    Args:
        student_logits: (B, K).
        teacher_logits: (B, K) raw teacher logits (temperature is applied here).
        labels: (B,) int64 gold labels, -1 where unknown.
        soft: ``"mse"`` or ``"kl"``.
        temperature: T > 0.
        alpha: weight of the soft term, in [0, 1].
    """
    if soft not in ("mse", "kl"):
        raise ValueError(f"soft loss must be 'mse' or 'kl', got {soft!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha == 0.0:
        return ce_loss(student_logits, None, labels)
    loss = LOSSES[soft](student_logits, teacher_logits, labels, temperature)
    if alpha == 1.0:
        return loss
    return alpha * loss + (1.0 - alpha) * ce_loss(student_logits, None, labels)
