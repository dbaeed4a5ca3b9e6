"""Synthetic studies with known truth, written in the real trial-attribute schema.

Used by the report's tests (a planted gap must be recovered, a planted driver must rank first)
and to preview a report without training anything::

    from reports.synthetic import SyntheticSpec, make_study, make_teacher
    study = make_study(SyntheticSpec(n_trials=40, gap_mean=0.01))

Each trial's truth is ``baseline = 0.84 - lr_amplitude * |log10(lr) + 3| - 0.004 * |layers - 2| + seed noise`` and
``distill = baseline + gap``, with ``gap = gap_mean + gap_slope * (log10 T - 0.5) + noise``;
so ``temperature`` alone drives the gap and ``lr`` dominates both arms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from reports.inputs import quiet_optuna
from study.config import TrialConfig

__all__ = ["SyntheticSpec", "SyntheticTeacher", "make_study", "make_teacher", "DISTRIBUTIONS"]

#: The synthetic search space (a subset of the real one, same names as TrialConfig fields).
DISTRIBUTIONS = {
    "cell": CategoricalDistribution(("lstm", "gru")),
    "soft_loss": CategoricalDistribution(("mse", "kl")),
    "temperature": FloatDistribution(1.0, 10.0, log=True),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "layers": IntDistribution(1, 4),
    "input_dropout": FloatDistribution(0.0, 0.5),
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Knobs of a synthetic study (accuracies as fractions).

    Attributes:
        n_trials: completed primary trials (one configuration each).
        gap_mean: planted mean gap.
        gap_slope: gap change per decade of temperature (0: temperature does not matter).
        gap_noise: std of the per-trial gap noise.
        seed_noise: std of each arm's accuracy across seeds of one configuration.
        lr_amplitude: how much a bad learning rate costs both arms (drives the arms).
        n_replicated: configurations re-run with more seeds (``replicate_of``).
        n_seeds: seeds per replicated configuration (original included).
        n_pruned, n_failed, n_running: trials in those states.
        objective: ``distill``, ``gap`` or ``both``.
        epochs: epoch budget; pruned trials stop after one epoch.
        max_train_examples: the budget's train subset size.
        test_size: rows of the synthetic test split.
        dev_size: dev accuracies are multiples of 1 / dev_size, as on a real dev set.
        minutes_per_trial: each trial's wall time; two workers run trials in pairs.
        seed: seed of everything random.
    """

    n_trials: int = 40
    gap_mean: float = 0.01
    gap_slope: float = 0.0
    gap_noise: float = 0.01
    seed_noise: float = 0.004
    lr_amplitude: float = 0.08
    n_replicated: int = 3
    n_seeds: int = 3
    n_pruned: int = 4
    n_failed: int = 1
    n_running: int = 1
    objective: str = "distill"
    epochs: int = 3
    max_train_examples: int | None = 2000
    test_size: int = 200
    dev_size: int = 872
    minutes_per_trial: float = 10.0
    seed: int = 0


@dataclass(frozen=True)
class SyntheticTeacher:
    """Teacher artifacts as the run directory would hold them."""

    diagnostics: dict
    test_logits: np.ndarray
    test_labels: np.ndarray


def _config_id(config: dict) -> str:
    without_seed = {k: v for k, v in config.items() if k != "seed"}
    return hashlib.sha1(json.dumps(without_seed, sort_keys=True).encode()).hexdigest()[:12]


def _test_labels(spec: SyntheticSpec) -> np.ndarray:
    return np.random.default_rng(spec.seed + 1).integers(0, 2, spec.test_size)


def _predictions(labels: np.ndarray, accuracy: float, rng: np.random.Generator) -> str:
    wrong = rng.choice(labels.size, size=int(round((1 - accuracy) * labels.size)), replace=False)
    pred = labels.copy()
    pred[wrong] = 1 - pred[wrong]
    return "".join(map(str, pred.tolist()))


def _arm(curve: list[float], test_acc: float, seconds: float) -> dict:
    best = int(np.argmax(curve))
    return {
        "dev_acc": curve,
        "dev_loss": [1.0 - x for x in curve],
        "train_loss": [1.2 - x for x in curve],
        "best_dev_acc": curve[best],
        "best_epoch": best,
        "train_seconds": seconds,
        "sentences_seen": 2000 * len(curve),
        "sent_per_s": 2000 * len(curve) / seconds,
        "test_acc": test_acc,
    }


def make_study(spec: SyntheticSpec = SyntheticSpec(), name: str = "synthetic") -> optuna.Study:
    """An in-memory study whose trials follow the documented attribute schema."""
    rng = np.random.default_rng(spec.seed)
    labels = _test_labels(spec)
    directions = ["maximize", "maximize"] if spec.objective == "both" else ["maximize"]
    with quiet_optuna():
        study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(), study_name=name, directions=directions
        )
    for key, value in {
        "objective": spec.objective,
        "epochs": spec.epochs,
        "max_train_examples": spec.max_train_examples,
        "dataset": "synthetic",
        "teacher": "synthetic-teacher",
        "test_size": spec.test_size,
        "data_key": "synthetic",
        "teacher_key": "synthetic",
        "created": "2024-01-01T00:00:00",
    }.items():
        study.set_user_attr(key, value)
    t0 = datetime(2024, 1, 1, 12, 0, 0)
    quantum = 1.0 / spec.dev_size

    def truth(params: dict) -> tuple[float, float]:
        lr_effect = -spec.lr_amplitude * abs(math.log10(params["lr"]) + 3.0)
        base = 0.84 + lr_effect - 0.004 * abs(params["layers"] - 2)
        gap = spec.gap_mean + spec.gap_slope * (math.log10(params["temperature"]) - 0.5)
        return base, gap

    def sample_params() -> dict:
        return {
            "cell": str(rng.choice(["lstm", "gru"])),
            "soft_loss": str(rng.choice(["mse", "kl"])),
            "temperature": float(np.exp(rng.uniform(0, math.log(10)))),
            "lr": float(10 ** rng.uniform(-4, -2)),
            "layers": int(rng.integers(1, 5)),
            "input_dropout": float(rng.uniform(0, 0.5)),
        }

    def quantise(x: float) -> float:
        return float(np.clip(round(x / quantum) * quantum, 0.0, 1.0))

    def add(index: int, params: dict, state: TrialState, seed: int, replicate_of=None) -> None:
        config = dataclasses.replace(TrialConfig(), epochs=spec.epochs, **params).to_dict()
        base, gap = truth(params)
        baseline = quantise(base + rng.normal(0, spec.seed_noise))
        distill = quantise(
            base + gap + rng.normal(0, spec.seed_noise) + rng.normal(0, spec.gap_noise)
        )
        epochs = spec.epochs if state == TrialState.COMPLETE else 1
        # Curves rise to the best value; pruned trials hold only their first epoch.
        ramp = [1.0 - 0.02 * (spec.epochs - 1 - e) for e in range(spec.epochs)][:epochs]
        d_curve = [quantise(distill * r) for r in ramp]
        b_curve = [quantise(baseline * r) for r in ramp]
        d_test = float(np.clip(max(d_curve) + rng.normal(0, 0.01), 0.5, 1.0))
        b_test = float(np.clip(max(b_curve) + rng.normal(0, 0.01), 0.5, 1.0))
        attrs = {
            "seed": seed,
            "config": config,
            "config_id": _config_id(config),
            "budget": {
                "epochs": spec.epochs,
                "max_train_examples": spec.max_train_examples,
                "train_size": spec.max_train_examples or 6920,
            },
            "distill": _arm(d_curve, d_test, 30.0 * epochs),
            "baseline": _arm(b_curve, b_test, 25.0 * epochs),
            "distill_test_pred": _predictions(labels, d_test, rng),
            "baseline_test_pred": _predictions(labels, b_test, rng),
            "gap": max(d_curve) - max(b_curve),
            "params_trainable": 1_000_000 * params["layers"],
            "params_total": 1_000_000 * params["layers"] + 23_440_896,
            "wall_seconds": 60.0 * spec.minutes_per_trial,
            "epochs_run": epochs,
            "worker": f"host:{100 + index % 2}",
        }
        if replicate_of is not None:
            attrs["replicate_of"] = replicate_of
        if state == TrialState.RUNNING:
            attrs = {k: attrs[k] for k in ("seed", "config", "config_id", "budget", "worker")}
        if spec.objective == "both":
            values = [max(d_curve), max(b_curve)]
        elif spec.objective == "gap":
            values = [attrs["gap"]]
        else:
            values = [max(d_curve)]
        trial = create_trial(
            state=state,
            params=params,
            distributions={k: DISTRIBUTIONS[k] for k in params},
            values=values if state == TrialState.COMPLETE else None,
            user_attrs=attrs,
            intermediate_values={e: v for e, v in enumerate(d_curve)}
            if spec.objective != "both" and state != TrialState.RUNNING
            else None,
        )
        # Two workers, trials in pairs of ``minutes_per_trial`` each.
        trial.datetime_start = t0 + timedelta(minutes=spec.minutes_per_trial * (index // 2))
        trial.datetime_complete = (
            None
            if state == TrialState.RUNNING
            else trial.datetime_start + timedelta(minutes=spec.minutes_per_trial)
        )
        study.add_trial(trial)

    index = 0
    primary: list[tuple[int, dict]] = []
    for _ in range(spec.n_trials):
        params = sample_params()
        add(index, params, TrialState.COMPLETE, seed=index)
        primary.append((index, params))
        index += 1
    # Replicate the best configurations by truth (what `study replicate --top K` would pick).
    ranked = sorted(primary, key=lambda p: -sum(truth(p[1])))[: spec.n_replicated]
    for number, params in ranked:
        for _ in range(spec.n_seeds - 1):
            add(index, params, TrialState.COMPLETE, seed=1000 + index, replicate_of=number)
            index += 1
    for state, count in (
        (TrialState.PRUNED, spec.n_pruned),
        (TrialState.FAIL, spec.n_failed),
        (TrialState.RUNNING, spec.n_running),
    ):
        for _ in range(count):
            add(index, sample_params(), state, seed=index)
            index += 1
    return study


def make_teacher(spec: SyntheticSpec = SyntheticSpec(), accuracy: float = 0.92) -> SyntheticTeacher:
    """An over-confident synthetic teacher whose diagnostics are computed from its logits."""
    rng = np.random.default_rng(spec.seed + 2)
    labels = _test_labels(spec)

    def logits(y: np.ndarray) -> np.ndarray:
        right = rng.random(y.size) < accuracy
        pred = np.where(right, y, 1 - y)
        margin = rng.gamma(4.0, 1.5, y.size)  # large margins: confident even when wrong
        z = np.zeros((y.size, 2), dtype=np.float32)
        z[np.arange(y.size), pred] = margin
        return z

    train_y = rng.integers(0, 2, 4000)
    train_z = logits(train_y)
    test_z = logits(labels)

    def softmax(z: np.ndarray, T: float = 1.0) -> np.ndarray:
        e = np.exp((z - z.max(axis=1, keepdims=True)) / T)
        return e / e.sum(axis=1, keepdims=True)

    p = softmax(train_z)
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == train_y
    edges = np.linspace(0.5, 1.0, 11)
    counts, _ = np.histogram(conf, bins=edges)
    which = np.clip(np.digitize(conf, edges) - 1, 0, len(edges) - 2)
    bin_conf = [
        float(conf[which == b].mean()) if (which == b).any() else float("nan")
        for b in range(len(edges) - 1)
    ]
    bin_acc = [
        float(correct[which == b].mean()) if (which == b).any() else float("nan")
        for b in range(len(edges) - 1)
    ]
    bin_count = [int((which == b).sum()) for b in range(len(edges) - 1)]
    ece = (
        sum(n * abs(c - a) for n, c, a in zip(bin_count, bin_conf, bin_acc, strict=True) if n)
        / conf.size
    )
    temps = [1, 2, 4, 8]
    entropy = []
    for T in temps:
        q = softmax(train_z, T)
        entropy.append(float(-(q * np.log2(np.clip(q, 1e-12, 1))).sum(axis=1).mean()))
    diagnostics = {
        "accuracy": {
            "train": float(correct.mean()),
            "dev": accuracy - 0.01,
            "test": float((test_z.argmax(axis=1) == labels).mean()),
        },
        "confidence_hist": {"edges": edges.tolist(), "counts": counts.tolist()},
        "reliability": {
            "split": "dev",
            "bin_confidence": bin_conf,
            "bin_accuracy": bin_acc,
            "bin_count": bin_count,
        },
        # the layout study/teacher.py writes: ECE per split, entropy in bits
        "ece": {"train": float(ece), "dev": float(ece), "test": float(ece)},
        "entropy_vs_T": {"T": temps, "mean_entropy_bits": entropy, "split": "train"},
        "params": 22_713_216,
        "infer_sent_per_s": 350.0,
    }
    return SyntheticTeacher(diagnostics, test_z, labels)
