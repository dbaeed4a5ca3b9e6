"""The paired trial: one config, one seed, one data order, two arms (distill and baseline).

Both arms start from the same initial weights (built under the same torch seed), see the same
training batches in the same order (plans from ``study.batching`` depend only on the seed and
epoch) and draw the same dropout masks (each student owns a generator seeded with the trial
seed). The distill arm learns from the teacher's cached logits
(``alpha * soft + (1 - alpha) * ce``, see ``models.losses``) and, with ``augment_factor > 0``,
also from the teacher-labelled augmented rows; the baseline arm learns from the labels only.

Speed (issue 3): batches hold sentences of one exact length, so nothing is padded or packed;
the per-length tensors are built once per ``PairData`` and device; losses and accuracies are
accumulated on the device and read once per epoch (no host-device sync per step); Adam is the
fused single-pass kernel; on CPUs with AVX-512 BF16 or AMX, ``precision="auto"`` trains under
bf16 autocast, which reaches the oneDNN LSTM kernel (``mkldnn_rnn_layer``) and the linear
layers (``study.device.autocast_dtype``). ``torch.set_num_threads`` is the caller's to set.
What remains is ~80 % oneDNN LSTM forward/backward (profiled with ``torch.profiler``).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from data_prep.tokenized import TokenizedSplit
from models.losses import ce_loss, distill_loss
from models.student import Student
from study.batching import Buckets, Plan, eval_plan, interleave, plan_rng, train_plan
from study.config import ARMS, TrialConfig
from study.device import autocast, autocast_dtype
from study.errors import ArtifactError
from study.progress import progress as progress_bar

__all__ = [
    "PairData",
    "ArmResult",
    "PairProgress",
    "PairResult",
    "train_pair",
    "evaluate",
    "warmup_cosine",
]

#: Rows per batch at evaluation (any size gives the same predictions; larger is faster).
EVAL_BATCH_SIZE = 256

# Plan random streams, so the augmented sample never shifts the training-split order.
_TICK_BATCHES = 64  # batches between on_progress calls (a time check, no device sync)
_STREAM_TRAIN, _STREAM_AUG_ROWS, _STREAM_AUG_MERGE = 0, 1, 2


@dataclass(frozen=True, eq=False)
class PairData:
    """Everything a paired trial reads, built once per worker process.

    Attributes:
        train, dev, test: tokenized splits (``test`` optional).
        train_logits, dev_logits: (n, 2) float32 raw teacher logits of train / dev.
        embeddings: (V, E) float32 frozen teacher word embeddings, shared by all students.
        pad_id: the tokenizer's padding id.
        augmented: teacher-labelled transfer set (labels -1), for the distill arm only.
        augmented_logits: its (n_aug, 2) teacher logits.
    """

    train: TokenizedSplit
    dev: TokenizedSplit
    test: TokenizedSplit | None
    train_logits: np.ndarray
    dev_logits: np.ndarray
    embeddings: torch.Tensor
    pad_id: int
    augmented: TokenizedSplit | None = None
    augmented_logits: np.ndarray | None = None
    # Length buckets per (split, device), built on first use and reused by every trial.
    _buckets: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.train_logits) != len(self.train):
            raise ValueError(f"{len(self.train_logits)} train logits for {len(self.train)} rows")
        if len(self.dev_logits) != len(self.dev):
            raise ValueError(f"{len(self.dev_logits)} dev logits for {len(self.dev)} rows")
        if (self.augmented is None) != (self.augmented_logits is None):
            raise ValueError("augmented and augmented_logits go together")
        if self.augmented is not None and len(self.augmented_logits) != len(self.augmented):
            raise ValueError("augmented_logits and augmented rows disagree")

    def buckets(self, name: str, device: torch.device) -> Buckets:
        """The split ``name`` as length buckets on ``device`` (cached)."""
        key = (name, str(device))
        if key not in self._buckets:
            split = getattr(self, name)
            targets = {"train": self.train_logits, "dev": self.dev_logits,
                       "augmented": self.augmented_logits}.get(name)
            self._buckets[key] = Buckets(split, targets, device)
        return self._buckets[key]


@dataclass(frozen=True)
class ArmResult:
    """One arm's curves and best checkpoint (accuracies are fractions in [0, 1]).

    Attributes:
        dev_acc, dev_loss, train_loss: one value per epoch run so far (dev loss is the label
            cross-entropy for both arms; train loss is the arm's own training loss).
        best_dev_acc, best_epoch: the best dev accuracy and its 0-based epoch (first on ties).
        train_seconds: time spent in training steps (evaluation excluded).
        sentences_seen: training rows processed (augmented rows included).
        sent_per_s: ``sentences_seen / train_seconds``.
        test_acc, test_pred: accuracy and '0'/'1' predictions on the test split of the
            best-dev checkpoint (``None`` without a test split or before the end).
        state_dict: best-dev weights, trainable parameters only (not stored in the study).
    """

    dev_acc: list[float]
    dev_loss: list[float]
    train_loss: list[float]
    best_dev_acc: float
    best_epoch: int
    train_seconds: float
    sentences_seen: int
    sent_per_s: float
    test_acc: float | None = None
    test_pred: str | None = None
    state_dict: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    def to_attrs(self) -> dict:
        """The JSON-able summary stored as an Optuna user attribute (no weights, no preds)."""
        return {
            "dev_acc": list(self.dev_acc),
            "dev_loss": list(self.dev_loss),
            "train_loss": list(self.train_loss),
            "best_dev_acc": self.best_dev_acc,
            "best_epoch": self.best_epoch,
            "train_seconds": self.train_seconds,
            "sentences_seen": self.sentences_seen,
            "sent_per_s": self.sent_per_s,
            "test_acc": self.test_acc,
        }


@dataclass(frozen=True)
class PairProgress:
    """What ``on_epoch`` receives after every epoch: both arms' curves so far.

    Attributes:
        epoch: the 0-based epoch just finished.
        distill, baseline: the arms' results so far (no test figures, no weights).
        epochs: the number of epochs configured.
    """

    epoch: int
    distill: ArmResult
    baseline: ArmResult
    epochs: int


@dataclass(frozen=True)
class PairResult:
    """The outcome of one paired trial."""

    distill: ArmResult
    baseline: ArmResult
    params_trainable: int
    params_total: int
    wall_seconds: float
    seed: int
    config: TrialConfig

    @property
    def gap(self) -> float:
        """distill − baseline best dev accuracy (fraction)."""
        return self.distill.best_dev_acc - self.baseline.best_dev_acc


def warmup_cosine(total_steps: int, warmup: float) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` of the steps, then cosine decay to 0 (the study's OneCycle
    shape without the momentum cycle)."""
    warm = int(round(warmup * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        span = max(1, total_steps - warm)
        progress = min(1.0, (step - warm) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


# -- evaluation --------------------------------------------------------------------------------
@torch.inference_mode()
def evaluate(
    model: Student,
    buckets: Buckets,
    dtype: torch.dtype | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Accuracy and mean label cross-entropy of ``model`` on a bucketed split.

    Returns:
        (accuracy, loss) as 0-d device tensors (no host sync here) and the (n,) int64
        predictions in the split's row order. Rows labelled -1 count in neither figure.
    """
    model.eval()
    device = buckets.device
    correct = torch.zeros((), dtype=torch.int64, device=device)
    labelled = torch.zeros((), dtype=torch.int64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float32, device=device)
    preds = torch.zeros(len(buckets), dtype=torch.int64, device=device)
    plan = eval_plan(buckets, batch_size)
    for b, pos in zip(plan.bucket.tolist(), plan.tensors(device), strict=True):
        bucket = buckets.buckets[b]
        ids, labels = bucket.ids.index_select(0, pos), bucket.labels.index_select(0, pos)
        with autocast(device, dtype):
            logits = model(ids).logits
        logits = logits.float()  # (b, K)
        pred = logits.argmax(-1)
        preds[bucket.rows.index_select(0, pos)] = pred
        valid = labels >= 0
        correct += ((pred == labels) & valid).sum()
        labelled += valid.sum()
        loss_sum += F.cross_entropy(logits, labels, ignore_index=-1, reduction="sum")
    denom = labelled.clamp(min=1)
    return correct.double() / denom, loss_sum.double() / denom, preds


# -- one arm -----------------------------------------------------------------------------------
class _Arm:
    """A student with its optimiser, schedule, loss and curves."""

    def __init__(self, name: str, model: Student, config: TrialConfig, total_steps: int,
                 dtype: torch.dtype | None, device: torch.device) -> None:
        self.name = name
        self.model = model
        self.config = config
        self.dtype = dtype
        self.device = device
        self.params = [p for p in model.parameters() if p.requires_grad]
        # The fused Adam kernel updates all tensors in one pass: ~2 ms per step for 3M
        # parameters on one CPU core against ~12 ms for the multi-pass foreach version, which
        # was ~12 % of a training step. It exists for CPU and CUDA float tensors.
        fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in self.params)
        self.optimizer = torch.optim.Adam(
            self.params, lr=config.lr, betas=(config.beta1, config.beta2),
            weight_decay=config.weight_decay, fused=fused or None,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(total_steps, config.warmup)
        )
        # Loss scaling is needed for fp16 only (bf16 has fp32's exponent range).
        self.scaler = (
            torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
        )
        self.dev_acc: list[float] = []
        self.dev_loss: list[float] = []
        self.train_loss: list[float] = []
        self.best_dev_acc = -1.0
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.train_seconds = 0.0
        self.sentences_seen = 0
        self.test_acc: float | None = None
        self.test_pred: str | None = None

    def loss(self, logits: torch.Tensor, targets: torch.Tensor | None,
             labels: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.name == "baseline":
            return ce_loss(logits, None, labels)
        return distill_loss(logits, targets, labels, c.soft_loss, c.temperature, c.alpha)

    def train_epoch(self, plan: Plan, sources: list[Buckets], bar,
                    tick: Callable[[int, int], None] | None = None) -> None:
        """One pass over ``plan``; the mean training loss is read once, at the end.
        ``tick(sentences done, sentences in the epoch)`` is called every _TICK_BATCHES batches."""
        model, opt, clip = self.model, self.optimizer, self.config.clip
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        start = time.perf_counter()
        batches = zip(plan.source.tolist(), plan.bucket.tolist(), plan.tensors(self.device),
                      strict=True)
        done = 0
        for step, (src, b, pos) in enumerate(batches, 1):
            bucket = sources[src].buckets[b]
            ids = bucket.ids.index_select(0, pos)  # (b, L)
            labels = bucket.labels.index_select(0, pos)  # (b,)
            targets = None if bucket.targets is None else bucket.targets.index_select(0, pos)
            with autocast(self.device, self.dtype):
                logits = model(ids).logits  # (b, K)
            loss = self.loss(logits, targets, labels)
            opt.zero_grad(set_to_none=True)
            if self.scaler is None:
                loss.backward()
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.params, clip)
                opt.step()
            else:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(opt)
                if clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.params, clip)
                self.scaler.step(opt)
                self.scaler.update()
            self.scheduler.step()
            loss_sum += loss.detach() * len(pos)
            if bar is not None:
                bar.update(len(pos))
            done += len(pos)
            if tick is not None and step % _TICK_BATCHES == 0:
                tick(done, plan.sentences)
        mean_loss = loss_sum.item() / max(1, plan.sentences)  # the epoch's one sync
        self.train_seconds += time.perf_counter() - start
        self.sentences_seen += plan.sentences
        self.train_loss.append(mean_loss)

    def validate(self, dev: Buckets, epoch: int) -> None:
        acc, loss, _ = evaluate(self.model, dev, self.dtype)
        acc, loss = float(acc.item()), float(loss.item())
        self.dev_acc.append(acc)
        self.dev_loss.append(loss)
        if acc > self.best_dev_acc:
            self.best_dev_acc, self.best_epoch = acc, epoch
            self.best_state = self.model.trainable_state_dict()

    def test(self, test: Buckets) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state, strict=False)
        acc, _, preds = evaluate(self.model, test, self.dtype)
        self.test_acc = float(acc.item())
        self.test_pred = "".join("1" if p else "0" for p in preds.tolist())

    def result(self, final: bool = False) -> ArmResult:
        return ArmResult(
            dev_acc=list(self.dev_acc),
            dev_loss=list(self.dev_loss),
            train_loss=list(self.train_loss),
            best_dev_acc=self.best_dev_acc,
            best_epoch=self.best_epoch,
            train_seconds=self.train_seconds,
            sentences_seen=self.sentences_seen,
            sent_per_s=self.sentences_seen / self.train_seconds if self.train_seconds else 0.0,
            test_acc=self.test_acc if final else None,
            test_pred=self.test_pred if final else None,
            state_dict=self.best_state if final else None,
        )


def _plans(config: TrialConfig, data: PairData, seed: int, train: Buckets,
           augmented: Buckets | None) -> tuple[list[Plan], list[Plan]]:
    """Every epoch's batch plan for (distill, baseline), computed up front so that the
    learning-rate schedule knows its exact number of steps."""
    distill, baseline = [], []
    n_aug = 0
    if config.augment_factor > 0:
        # Never train silently with fewer augmented rows than the configuration says (a worker
        # started before 'augment' finished once did): the trial fails with this message.
        held = 0 if augmented is None else len(augmented) // max(1, len(train))
        if held < config.augment_factor:
            raise ArtifactError(
                f"augment_factor={config.augment_factor} needs {config.augment_factor} augmented "
                f"copies of train; the data holds {held} (run 'distill-study augment --factor "
                f"{config.augment_factor}' first, or fix augment_factor=0)")
        n_aug = config.augment_factor * len(train)
    for epoch in range(config.epochs):
        base = train_plan(train, config.batch_size, seed, epoch, stream=_STREAM_TRAIN)
        baseline.append(base)
        if n_aug:
            # a fresh sample of the transfer set each epoch when it holds more than we use
            rows = plan_rng(seed, epoch, _STREAM_AUG_ROWS).permutation(len(augmented))[:n_aug]
            aug = train_plan(augmented, config.batch_size, seed, epoch, rows=rows, source=1,
                             stream=_STREAM_AUG_ROWS)
            distill.append(interleave(base, aug, plan_rng(seed, epoch, _STREAM_AUG_MERGE)))
        else:
            distill.append(base)
    return distill, baseline


def train_pair(
    config: TrialConfig,
    data: PairData,
    seed: int,
    *,
    on_epoch: Callable[[PairProgress], None] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_progress: Callable[[str, int, int, int], None] | None = None,
) -> PairResult:
    """Train the distill and the baseline arm of one paired trial.

    Per epoch: the distill arm trains (training rows, plus ``augment_factor`` training-sets'
    worth of augmented rows when the config asks for them and ``data.augmented`` is given),
    then the baseline arm (training rows only, identical batches in identical order), then
    both are evaluated on dev and ``on_epoch`` is called. At the end each arm's best-dev
    checkpoint is evaluated on ``data.test`` when it is given.

    Args:
        config: the trial's configuration.
        data: the splits, teacher logits and embeddings.
        seed: initial weights, batch order and dropout streams all derive from it.
        on_epoch: called with a :class:`PairProgress` after every epoch; whatever it raises
            (e.g. ``optuna.TrialPruned``) propagates.
        device: where to train.
        progress: show a tqdm bar on stderr (its rate is training sentences per second).
        on_progress: called within epochs (every 64 batches) with (arm, 0-based epoch,
            sentences done, sentences in that arm's epoch), for progress lines of long trials.

    Returns:
        The :class:`PairResult`. On CPU the same config, data, seed and thread count give
        bit-identical results.
    """
    wall = time.perf_counter()
    arms, models = _train_arms(config, data, seed, ARMS, on_epoch, device, progress,
                               on_progress)
    return PairResult(
        distill=arms[0].result(final=True),
        baseline=arms[1].result(final=True),
        params_trainable=models[0].num_parameters(trainable=True),
        params_total=models[0].num_parameters(),
        wall_seconds=time.perf_counter() - wall,
        seed=seed,
        config=config,
    )


def train_arm(
    config: TrialConfig,
    data: PairData,
    seed: int,
    arm: str,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> ArmResult:
    """Train one arm of a paired trial alone: bit-identical on CPU (same threads) to that arm
    in :func:`train_pair`, since the arms share nothing but the read-only data (each has its
    own weights, optimiser, dropout generator, and plans that depend only on seed and epoch),
    at the cost of that arm only (``export`` uses it)."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {', '.join(ARMS)}, got {arm!r}")
    arms, _ = _train_arms(config, data, seed, (arm,), None, device, progress)
    return arms[0].result(final=True)


def _train_arms(config: TrialConfig, data: PairData, seed: int, names: tuple[str, ...],
                on_epoch: Callable[[PairProgress], None] | None,
                device: torch.device | str, progress: bool,
                on_progress: Callable[[str, int, int, int], None] | None = None,
                ) -> tuple[list[_Arm], list[Student]]:
    """The epoch loop of :func:`train_pair` over the arms in ``names`` (in ARMS order);
    ``on_epoch`` needs both arms."""
    device = torch.device(device)
    # auto: bf16 on CPUs with AVX-512 BF16/AMX (it reaches the oneDNN LSTM and the linears),
    # bf16 or fp16 on CUDA, else fp32 (study.device).
    dtype = autocast_dtype(device, config.precision)
    train = data.buckets("train", device)
    dev = data.buckets("dev", device)
    augmented = data.buckets("augmented", device) if data.augmented is not None else None
    sources = [train, augmented] if augmented is not None else [train]
    all_plans = dict(zip(ARMS, _plans(config, data, seed, train, augmented), strict=True))

    embeddings = data.embeddings.to(device)  # shared by both students, never copied per arm
    models = []
    with torch.random.fork_rng(devices=[]):
        for _ in names:
            torch.manual_seed(seed)  # same initial weights in both arms
            models.append(Student(config.student, embeddings, data.pad_id, seed=seed).to(device))
    plans = [all_plans[name] for name in names]
    arms = [_Arm(name, model, config, sum(len(p) for p in arm_plans), dtype, device)
            for name, model, arm_plans in zip(names, models, plans, strict=True)]

    bar = None
    if progress:
        total = sum(p.sentences for arm_plans in plans for p in arm_plans)
        bar = progress_bar(total=total, unit="sent", unit_scale=True,
                           desc="pair" if len(names) == 2 else names[0])
    try:
        for epoch in range(config.epochs):
            for arm, arm_plans in zip(arms, plans, strict=True):
                if bar is not None:
                    bar.set_description(f"epoch {epoch + 1}/{config.epochs} {arm.name}")
                tick = None if on_progress is None else functools.partial(
                    on_progress, arm.name, epoch)
                arm.train_epoch(arm_plans[epoch], sources, bar, tick)
            for arm in arms:
                arm.validate(dev, epoch)
            if bar is not None:
                bar.set_postfix({arm.name: f"{arm.dev_acc[-1]:.3f}" for arm in arms})
            if on_epoch is not None:
                on_epoch(PairProgress(epoch, arms[0].result(), arms[1].result(), config.epochs))
        if data.test is not None:
            test = data.buckets("test", device)
            for arm in arms:
                arm.test(test)
    finally:
        if bar is not None:
            bar.close()
    return arms, models
