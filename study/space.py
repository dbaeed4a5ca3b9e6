"""The search space of a study, as data: one tuple of :class:`Param` specs.

This module is the only place that calls ``trial.suggest_*`` (STYLE.md rule 4). A trial becomes
a :class:`~study.config.TrialConfig` in one step::

    params = suggest(trial, space)                  # {name: value} for every Param
    config = config_from_params(base, params)       # dataclasses.replace(base, **params)

The defaults bracket the study we reproduce (../shared/REFERENCES.md: 2-3 layers, 384 units per
direction, input/layer dropout 0.25, MSE at T = 1-2, Adam lr 1e-3, batch 64). The command line
can fix a parameter (``--fix cell=gru``) or narrow its range (``--range lr=3e-4:1e-3``); both
are checked against the defaults and refused with :class:`~study.errors.UsageError`.

A fixed parameter stays in the space as a single-valued distribution, so every trial's
``params`` holds every name (reports read one flat table) while samplers ignore it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from study.config import TrialConfig
from study.errors import UsageError

__all__ = [
    "Param",
    "Space",
    "default_space",
    "apply_overrides",
    "suggest",
    "config_from_params",
    "original_configs",
    "space_to_json",
    "space_from_json",
    "describe",
]

KINDS = ("float", "int", "categorical")


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter.

    Attributes:
        name: a :class:`~study.config.TrialConfig` field.
        kind: ``"float"``, ``"int"`` or ``"categorical"``.
        low: lower bound (numeric kinds), inclusive.
        high: upper bound (numeric kinds), inclusive; ``low == high`` means fixed.
        log: sample on a log scale (numeric kinds; then ``low > 0``).
        step: grid step for ints (and floats, if set); None for a continuous float.
        choices: the allowed values (categorical); one choice means fixed.
    """

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "categorical":
            if not self.choices:
                raise ValueError(f"{self.name}: a categorical parameter needs choices")
            return
        if self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"{self.name}: needs low <= high, got {self.low}..{self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.name}: a log-scale parameter needs low > 0")
        if self.log and self.step is not None:
            raise ValueError(f"{self.name}: log scale and step cannot be combined (Optuna)")

    @property
    def fixed(self) -> bool:
        """True when the parameter can take one value only."""
        if self.kind == "categorical":
            return len(self.choices) == 1
        return self.low == self.high

    @property
    def value(self) -> Any:
        """The single value of a fixed parameter."""
        if not self.fixed:
            raise ValueError(f"{self.name} is not fixed")
        return self.choices[0] if self.kind == "categorical" else self.low

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this parameter's range (or is one of its choices)."""
        if self.kind == "categorical":
            return value in self.choices
        return self.low <= value <= self.high

    def clip(self, value: Any) -> Any:
        """The value of this space nearest to ``value`` (used to fit published configs)."""
        if self.kind == "categorical":
            if value in self.choices:
                return value
            numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool)
                          for c in self.choices)
            if numeric and isinstance(value, (int, float)):
                return min(self.choices, key=lambda c: (abs(c - value), c))
            return self.choices[0]
        v = min(max(value, self.low), self.high)
        if self.step:
            # Snap to the sampling grid, then back inside the bounds.
            v = self.low + round((v - self.low) / self.step) * self.step
            v = min(max(v, self.low), self.high)
        return int(round(v)) if self.kind == "int" else float(v)

    def describe(self) -> str:
        """A short human-readable form: ``lr=1e-4..3e-3 (log)``, ``cell={lstm,gru}``."""
        if self.kind == "categorical":
            return f"{self.name}={{{','.join(str(c) for c in self.choices)}}}"
        if self.fixed:
            return f"{self.name}={self.low:g}"
        extra = " (log)" if self.log else (f" step {self.step:g}" if self.step else "")
        return f"{self.name}={self.low:g}..{self.high:g}{extra}"


Space = tuple[Param, ...]

_DROPOUTS = ("embedding_dropout", "input_dropout", "layer_dropout", "weight_dropout",
             "output_dropout")


def default_space(max_augment_factor: int = 0) -> Space:
    """The default search space.

    Args:
        max_augment_factor: how many augmented copies per training sentence the run's
            augmented transfer set holds (issue 7); 0 when there is none, and then
            ``augment_factor`` is fixed to 0.

    Returns:
        The space as a tuple of :class:`Param`.
    """
    return (
        Param("cell", "categorical", choices=("lstm", "gru")),
        Param("layers", "int", 1, 4),
        # 384 per direction is the published width; 128..512 brackets it on a 64-unit grid.
        Param("hidden", "int", 128, 512, step=64),
        *(Param(name, "float", 0.0, 0.5) for name in _DROPOUTS),
        # 0 = DeepMoji's single learned vector (the original); otherwise the width of W.
        Param("attention_size", "categorical", choices=(0, 32, 64, 128)),
        # Hinton et al. 2015: T > 1 softens; the original used 1, 1.5 and 2.
        Param("temperature", "float", 1.0, 10.0, log=True),
        Param("soft_loss", "categorical", choices=("mse", "kl")),
        Param("alpha", "float", 0.0, 1.0),
        Param("lr", "float", 1e-4, 3e-3, log=True),
        Param("batch_size", "categorical", choices=(32, 64, 128)),
        Param("augment_factor", "int", 0, max(0, int(max_augment_factor))),
    )


# -- overrides -------------------------------------------------------------------------


def _by_name(space: Space) -> dict[str, Param]:
    return {p.name: p for p in space}


def _unknown(name: str, space: Space, flag: str) -> UsageError:
    names = ", ".join(p.name for p in space)
    return UsageError(f"{flag} {name}: unknown parameter; valid names: {names}")


def _split_assignment(text: str, flag: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(f"{flag} {text!r}: expected NAME=VALUE")
    return name.strip(), value.strip()


def _parse_value(param: Param, text: str, flag: str) -> Any:
    """``text`` as the parameter's type (no range check)."""
    try:
        if param.kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
        if param.kind == "int":
            return int(text)
    except ValueError:
        kind = "a number" if param.kind == "float" else "an integer"
        raise UsageError(f"{flag} {param.name}={text}: not {kind}") from None
    for choice in param.choices:
        if str(choice) == text:
            return choice
    allowed = ", ".join(str(c) for c in param.choices)
    raise UsageError(f"{flag} {param.name}={text}: must be one of {allowed}")


def apply_overrides(space: Space, fixes: Iterable[str] = (), ranges: Iterable[str] = ()) -> Space:
    """Fix or narrow parameters of ``space``.

    Args:
        space: the space to start from (normally :func:`default_space`).
        fixes: ``NAME=VALUE`` strings; the value must lie in ``space`` (any integer or float
            inside the bounds is accepted, off the sampling grid too).
        ranges: ``NAME=LOW:HIGH`` strings narrowing a numeric parameter inside its bounds (on
            its grid when it has a step), or ``NAME=A,B`` choosing a subset of a
            categorical parameter's choices.

    Returns:
        The new space (same order).

    Raises:
        UsageError: an unknown name, a malformed value, a value outside the space, or a
            parameter given twice.
    """
    params = _by_name(space)
    seen: set[str] = set()

    for text in fixes:
        name, raw = _split_assignment(text, "--fix")
        if name not in params:
            raise _unknown(name, space, "--fix")
        if name in seen:
            raise UsageError(f"--fix {name}: given more than once")
        seen.add(name)
        param = params[name]
        value = _parse_value(param, raw, "--fix")
        if not param.contains(value):
            raise UsageError(f"--fix {name}={raw}: outside the space ({param.describe()})")
        if param.kind == "categorical":
            params[name] = dataclasses.replace(param, choices=(value,))
        else:
            params[name] = dataclasses.replace(param, low=value, high=value, step=None)

    for text in ranges:
        name, raw = _split_assignment(text, "--range")
        if name not in params:
            raise _unknown(name, space, "--range")
        if name in seen:
            raise UsageError(f"--range {name}: given more than once (or also fixed)")
        seen.add(name)
        param = params[name]
        if param.kind == "categorical":
            parts = [s.strip() for s in raw.split(",")]
            if ":" in raw or not all(parts):
                raise UsageError(
                    f"--range {name}={raw}: a categorical parameter takes a comma-separated "
                    f"subset of its choices ({param.describe()})"
                )
            chosen = tuple(dict.fromkeys(_parse_value(param, s, "--range") for s in parts))
            params[name] = dataclasses.replace(param, choices=chosen)
            continue
        lo_text, sep, hi_text = raw.partition(":")
        if not sep:
            raise UsageError(f"--range {name}={raw}: expected LOW:HIGH")
        low = _parse_value(param, lo_text.strip(), "--range")
        high = _parse_value(param, hi_text.strip(), "--range")
        if low > high:
            raise UsageError(f"--range {name}={raw}: low is above high")
        if not (param.contains(low) and param.contains(high)):
            raise UsageError(f"--range {name}={raw}: must lie inside {param.describe()}")
        if param.step and ((low - param.low) % param.step or (high - param.low) % param.step):
            raise UsageError(
                f"--range {name}={raw}: bounds must lie on the grid {param.low:g} + "
                f"k*{param.step:g}"
            )
        params[name] = dataclasses.replace(param, low=low, high=high)

    return tuple(params[p.name] for p in space)


# -- trials ------------------------------------------------------------------------------


def suggest(trial, space: Space) -> dict[str, Any]:
    """Sample every parameter of ``space`` from ``trial`` (the only ``suggest_*`` calls).

    Fixed parameters are suggested too, as single-valued distributions, so they are recorded
    in ``trial.params`` without the sampler spending anything on them.

    Args:
        trial: an :class:`optuna.trial.Trial`.
        space: the space.

    Returns:
        ``{name: value}`` for every parameter, in the space's order.
    """
    params: dict[str, Any] = {}
    for p in space:
        if p.kind == "categorical":
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.kind == "int":
            step = int(p.step) if p.step and not p.fixed else 1
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=step,
                                               log=p.log)
        else:
            step = p.step if p.step and not p.fixed else None
            params[p.name] = trial.suggest_float(p.name, float(p.low), float(p.high), step=step,
                                                 log=p.log)
    return params


def config_from_params(base: TrialConfig, params: dict[str, Any]) -> TrialConfig:
    """The trial's configuration: ``base`` with ``params`` put in.

    Raises:
        ValueError: a name that is not a TrialConfig field, or an invalid combination.
    """
    known = {f.name for f in fields(TrialConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"not TrialConfig fields: {unknown}")
    return dataclasses.replace(base, **params)


# -- the published configurations ---------------------------------------------------------

# Shared by every student of the original study (REFERENCES.md): locked input and
# between-layer dropout 0.25, head dropout 0.25, no embedding or weight dropout, DeepMoji
# attention, Adam lr 1e-3, batch 64, pure distillation loss (alpha 1).
_ORIGINAL_COMMON: dict[str, Any] = {
    "hidden": 384,
    "embedding_dropout": 0.0,
    "input_dropout": 0.25,
    "layer_dropout": 0.25,
    "weight_dropout": 0.0,
    "output_dropout": 0.25,
    "attention_size": 0,
    "alpha": 1.0,
    "lr": 1e-3,
    "batch_size": 64,
    "augment_factor": 0,
}

# (cell, layers, soft loss, T, augment factor) of each published student; "kl" is the
# soft-target cross entropy (it differs from KL by the teacher's entropy, a constant).
_ORIGINAL_RUNS: tuple[tuple[str, int, str, float, int], ...] = (
    ("lstm", 3, "mse", 1.0, 0),
    ("gru", 2, "mse", 1.0, 0),
    ("lstm", 3, "mse", 2.0, 0),
    ("gru", 2, "mse", 2.0, 0),
    ("lstm", 3, "kl", 1.5, 0),
    ("gru", 2, "kl", 2.0, 0),
    # Masking augmentation at 3x data; only enqueued when the run has an augmented set.
    ("lstm", 3, "mse", 1.0, 3),
    ("gru", 2, "mse", 1.0, 3),
)


def original_configs(space: Space) -> list[dict[str, Any]]:
    """The original study's configurations as parameter dicts, fitted into ``space``.

    Each value is clipped to the (possibly fixed or narrowed) space: a fixed parameter takes
    its fixed value, a number its nearest allowed value. Configurations that become
    identical after clipping are kept once; the augmented ones only when ``augment_factor``
    can be above 0.

    Returns:
        One ``{name: value}`` dict per configuration, for ``study.enqueue_trial``.
    """
    params = _by_name(space)
    augment = params.get("augment_factor")
    can_augment = augment is not None and augment.high and augment.high > 0
    out: list[dict[str, Any]] = []
    for cell, layers, soft_loss, temperature, factor in _ORIGINAL_RUNS:
        if factor and not can_augment:
            continue
        wanted = {**_ORIGINAL_COMMON, "cell": cell, "layers": layers, "soft_loss": soft_loss,
                  "temperature": temperature, "augment_factor": factor}
        config = {p.name: p.clip(wanted[p.name]) if p.name in wanted else _middle(p)
                  for p in space}
        if config not in out:
            out.append(config)
    return out


def _middle(param: Param) -> Any:
    """A value for a parameter the original study did not set (only in custom spaces)."""
    if param.kind == "categorical":
        return param.choices[0]
    if param.log:
        return param.clip(math.sqrt(param.low * param.high))
    return param.clip((param.low + param.high) / 2)


# -- serialisation -----------------------------------------------------------------------


def space_to_json(space: Space) -> str:
    """The space as a JSON string (handed to worker processes, stored with the study)."""
    return json.dumps([dataclasses.asdict(p) for p in space])


def space_from_json(text: str) -> Space:
    """Inverse of :func:`space_to_json`."""
    out = []
    for d in json.loads(text):
        if d.get("choices") is not None:
            d["choices"] = tuple(d["choices"])
        out.append(Param(**d))
    return tuple(out)


def describe(space: Sequence[Param]) -> str:
    """One line naming every parameter and its range."""
    return "; ".join(p.describe() for p in space)
