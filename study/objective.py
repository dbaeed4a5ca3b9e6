"""The Optuna objective: one paired trial (distill arm vs baseline arm) per call.

The objective loads nothing: it is built once per worker around a
:class:`~study.train.PairData` and only turns a trial into a config, trains the pair, and
records the result. What it stores is the trial schema of docs/ARCHITECTURE.md; pruned and
interrupted trials keep the partial curves written after every epoch.

Graceful stop (issue 6): :class:`GracefulStop` replaces the SIGINT/SIGTERM handlers. While a
pair is training (and only then) the handler raises :class:`StopRequested` right away, so the
process exits within a second or two even mid-epoch; elsewhere (storage writes, Optuna's own
bookkeeping) it only records the request, which is honoured at the next safe point. The
stopped trial ends FAILED with ``interrupted`` set and its parameters and seed are enqueued
again, so re-running the same command resumes with exactly that trial.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import TrialState

from study.config import TrialConfig
from study.space import Space, config_from_params, suggest

__all__ = [
    "OBJECTIVES",
    "PairObjective",
    "GracefulStop",
    "StopRequested",
    "SurplusTrial",
    "derive_seed",
    "config_id",
    "arm_dict",
    "objective_directions",
    "worker_name",
]

OBJECTIVES = ("distill", "gap", "both")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived; the running trial is abandoned and re-queued.

    An ``Exception`` (not ``BaseException``) on purpose: Optuna then marks the trial FAILED
    before re-raising, so no trial is left RUNNING.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class SurplusTrial(Exception):
    """This trial would take the study past ``--n-trials``; it ends before training."""


def worker_name() -> str:
    """``host:pid``, the ``worker`` user attribute."""
    return f"{socket.gethostname()}:{os.getpid()}"


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (study seed, trial number, ...), stable across platforms."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0]
               & 0x7FFFFFFF)


def config_id(config: TrialConfig) -> str:
    """12 hex characters identifying a configuration (seed replicates share it)."""
    body = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha1(body.encode()).hexdigest()[:12]


def objective_directions(objective: str) -> list[str]:
    """Optuna directions for ``--objective``."""
    return ["maximize", "maximize"] if objective == "both" else ["maximize"]


def arm_dict(arm, epochs: int | None = None) -> dict:
    """An :class:`~study.train.ArmResult` (or its first ``epochs`` epochs) as a JSON dict."""
    dev = [float(x) for x in arm.dev_acc]
    if epochs is not None:
        dev = dev[:epochs]
    best = int(np.argmax(dev)) if dev else 0
    return {
        "dev_acc": dev,
        "dev_loss": [float(x) for x in arm.dev_loss][: len(dev)],
        "train_loss": [float(x) for x in arm.train_loss][: len(dev)],
        "best_dev_acc": float(arm.best_dev_acc) if epochs is None else (max(dev) if dev else 0.0),
        "best_epoch": int(arm.best_epoch) if epochs is None else best,
        "train_seconds": float(arm.train_seconds),
        "sentences_seen": int(arm.sentences_seen),
        "sent_per_s": float(arm.sent_per_s),
        "test_acc": None if arm.test_acc is None else float(arm.test_acc),
    }


class GracefulStop:
    """SIGINT/SIGTERM handling that never interrupts a storage write.

    Use :meth:`installed` around the worker loop, :meth:`armed` around code that may be cut
    short at any bytecode (training), and :meth:`check` at safe points.
    """

    def __init__(self, out=None) -> None:
        self.signum: int | None = None
        self._armed = False
        self._out = out or sys.stderr

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handler(self, signum, _frame) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
            print(f"distill-study: {signal.Signals(signum).name} received: stopping the running "
                  "trial (it will be re-queued)...", file=self._out, flush=True)
        else:
            print("distill-study: already stopping, please wait a moment", file=self._out,
                  flush=True)
        if self._armed:
            self._armed = False  # raise once; cleanup that follows must not be cut short
            raise StopRequested(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[GracefulStop]:
        """Install the handlers (main thread only) and restore the previous ones after.

        A signal the process was started with ignored stays ignored, as Python itself does
        for SIGINT: a shell starts background jobs (``cmd &`` in a script, ``nohup``) with
        SIGINT ignored so that Ctrl-C to the script does not reach them.
        """
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self  # signals cannot be handled here; the caller's handlers stay
            return
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        previous = {s: h for s, h in previous.items() if h is not signal.SIG_IGN}
        for s in previous:
            signal.signal(s, self._handler)
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        """Within this block a signal raises :class:`StopRequested` immediately."""
        self.check()
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    @contextlib.contextmanager
    def disarmed(self) -> Iterator[None]:
        """Temporarily defer signals inside an :meth:`armed` block (storage writes)."""
        was = self._armed
        self._armed = False
        try:
            yield
        finally:
            self._armed = was
        self.check() if was else None

    def check(self) -> None:
        """Raise :class:`StopRequested` if a signal arrived."""
        if self.signum is not None:
            raise StopRequested(self.signum)


@dataclass
class PairObjective:
    """``objective(trial)`` for :meth:`optuna.Study.optimize`; built once per worker.

    Attributes:
        data: the worker's :class:`~study.train.PairData` (loaded once, shared by trials).
        space: the search space.
        base: every non-searched field (epochs, precision, head width, ...).
        objective: ``distill``, ``gap`` or ``both``.
        study_seed: seeds trials that were not enqueued with a ``seed`` user attribute.
        max_train_examples: the budget's subset size (recorded in ``budget``).
        device: torch device string for :func:`~study.train.train_pair`.
        n_trials: the study's target of finished trials, or None; a trial that would exceed
            it ends at once as :class:`SurplusTrial` (see :meth:`_claim`).
        prune: report per epoch and let the pruner stop the pair.
        stop: the worker's :class:`GracefulStop`.
        train_pair: the trainer (injectable for tests of the Optuna layer alone).
        quiet: trial numbers whose expected failure (surplus, stop) Optuna should not log.
        epoch_line: called with a one-line progress summary of a long trial at most every
            ``epoch_line_every`` seconds: after an epoch (both arms' dev accuracy), or within
            one (the arm and the share of its epoch done), so that trials of many minutes show
            progress; None: no lines.
        keep_weights: called with (trial number, PairResult) of a complete trial to save
            both arms' best-dev weights; its dict becomes the ``weights`` user attribute.
    """

    data: object
    space: Space
    base: TrialConfig
    objective: str = "distill"
    study_seed: int = 0
    max_train_examples: int | None = None
    device: str = "cpu"
    n_trials: int | None = None
    prune: bool = True
    stop: GracefulStop = field(default_factory=GracefulStop)
    train_pair: Callable | None = None
    quiet: set = field(default_factory=set)
    worker: str = field(default_factory=worker_name)
    epoch_line: Callable[[str], None] | None = None
    epoch_line_every: float = 60.0
    keep_weights: Callable[[int, object], dict] | None = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}")
        if self.train_pair is None:
            from study.train import train_pair

            self.train_pair = train_pair
        # Imported once per worker, before the first trial: optuna_dashboard pulls in
        # scikit-learn (seconds), and after a trial a signal waits for it (issue 6.4).
        try:
            from optuna_dashboard import save_note
        except ImportError:  # the dashboard is optional at run time
            save_note = None
        self._save_note = save_note

    # -- the budget --------------------------------------------------------------------
    def _claim(self, trial: optuna.Trial) -> None:
        """Raise :class:`SurplusTrial` if ``n_trials`` trials are already finished or running.

        Workers check the count before asking for a trial, but two of them can pass that check
        together. Trials are therefore ranked by when they started running (then by number):
        a trial runs only if fewer than ``n_trials`` non-surplus trials ranked before it are
        finished or running. Every worker sees the same ranking, so at most ``n_trials``
        trials ever count, whatever the interleaving.
        """
        if self.n_trials is None:
            return
        study = trial.study
        me = study._storage.get_trial(trial._trial_id)
        never = datetime.datetime.max

        def rank(t) -> tuple:
            return (t.datetime_start or never, t.number)

        ahead = sum(
            1
            for t in study.get_trials(deepcopy=False,
                                      states=(*FINISHED, TrialState.RUNNING))
            if t.number != me.number and not t.user_attrs.get("surplus") and rank(t) < rank(me)
        )
        if ahead >= self.n_trials:
            raise SurplusTrial(f"{ahead} trials already count towards --n-trials "
                               f"{self.n_trials}")

    def _requeue(self, trial: optuna.Trial, seed: int | None) -> bool:
        """Enqueue this trial's fixed parameters (and seed) again; True if it had any."""
        frozen = trial.study._storage.get_trial(trial._trial_id)
        fixed = frozen.system_attrs.get("fixed_params")
        if fixed is None and "failed_trial" in frozen.system_attrs:
            fixed = dict(frozen.params)  # a heartbeat retry: Optuna put the params in directly
        if fixed is None and seed is None:
            return False
        params = fixed if fixed is not None else dict(frozen.params)
        if not params:
            return False
        attrs = {k: frozen.user_attrs[k] for k in ("seed", "replicate_of", "confirm_of")
                 if k in frozen.user_attrs}
        if seed is not None:
            attrs["seed"] = seed
        trial.study.enqueue_trial(params, user_attrs=attrs)
        return True

    # -- the trial ---------------------------------------------------------------------
    def __call__(self, trial: optuna.Trial):
        try:
            self._claim(trial)
        except SurplusTrial:
            trial.set_user_attr("surplus", True)
            self._requeue(trial, None)
            self.quiet.add(trial.number)
            raise

        seed = trial.user_attrs.get("seed")
        seed = int(seed) if seed is not None else derive_seed(self.study_seed, trial.number)
        params = suggest(trial, self.space)
        config = config_from_params(self.base, params)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("config_id", config_id(config))
        trial.set_user_attr("budget", {"epochs": config.epochs,
                                       "max_train_examples": self.max_train_examples,
                                       "train_size": len(self.data.train)})
        trial.set_user_attr("worker", self.worker)
        # On CPU a result is bit-identical only at the same thread count (study.train);
        # export reproduces a trial with it.
        trial.set_user_attr("threads", _torch_threads())

        state = {"epochs": 0, "start": time.monotonic(), "last_line": time.monotonic()}

        def on_epoch(progress) -> None:
            # Storage writes and pruning decisions must not be cut by a signal.
            with self.stop.disarmed():
                self._on_epoch(trial, progress, state)

        def on_progress(arm: str, epoch: int, done: int, total: int) -> None:
            now = time.monotonic()
            if now - state["last_line"] >= self.epoch_line_every:
                state["last_line"] = now
                self.epoch_line(
                    f"trial {trial.number:>4} epoch {epoch + 1}/{config.epochs}: {arm} "
                    f"{100 * done / max(1, total):.0f}% of {total:,} sentences "
                    f"({(now - state['start']) / 60:.1f} min)")

        # within-epoch lines only when lines are wanted (injected trainers need not take it)
        extra = {} if self.epoch_line is None else {"on_progress": on_progress}
        try:
            with self.stop.armed():
                result = self.train_pair(config, self.data, seed, on_epoch=on_epoch,
                                         device=self.device, **extra)
        except StopRequested as e:
            trial.set_user_attr("interrupted", signal.Signals(e.signum).name)
            self._requeue(trial, seed)
            self.quiet.add(trial.number)
            raise
        except SurplusTrial:
            trial.set_user_attr("surplus", True)
            self._requeue(trial, None)
            self.quiet.add(trial.number)
            raise
        except optuna.TrialPruned:
            raise
        except Exception as e:
            # Kept with the trial so the progress line and the dashboard say why it failed.
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:500])
            raise

        self._record(trial, result)
        if self.objective == "distill":
            return float(result.distill.best_dev_acc)
        if self.objective == "gap":
            return float(result.gap)
        return float(result.distill.best_dev_acc), float(result.baseline.best_dev_acc)

    def _on_epoch(self, trial: optuna.Trial, progress, state: dict) -> None:
        epochs = len(progress.distill.dev_acc)
        distill = arm_dict(progress.distill, epochs)
        baseline = arm_dict(progress.baseline, epochs)
        trial.set_user_attr("distill", distill)
        trial.set_user_attr("baseline", baseline)
        trial.set_user_attr("gap", distill["best_dev_acc"] - baseline["best_dev_acc"])
        trial.set_user_attr("epochs_run", epochs)
        if state["epochs"] == 0:
            # Second look at the budget, once every concurrent start is surely committed.
            self._claim(trial)
        state["epochs"] = epochs
        now = time.monotonic()
        if self.epoch_line is not None and now - state["last_line"] >= self.epoch_line_every:
            state["last_line"] = now
            self.epoch_line(
                f"trial {trial.number:>4} epoch {epochs}/{progress.epochs}: dev distill "
                f"{distill['dev_acc'][-1]:.4f} baseline {baseline['dev_acc'][-1]:.4f} "
                f"({(now - state['start']) / 60:.1f} min)")
        if not self.prune:
            return
        value = (distill["best_dev_acc"] if self.objective == "distill"
                 else distill["best_dev_acc"] - baseline["best_dev_acc"])
        trial.report(value, epochs)
        if trial.should_prune():
            # Both arms stop here: the exception leaves train_pair with both curves recorded.
            raise optuna.TrialPruned(f"pruned after epoch {epochs} at {value:.4f}")

    def _record(self, trial: optuna.Trial, result) -> None:
        """Every user attribute of the schema, and the dashboard note."""
        distill, baseline = arm_dict(result.distill), arm_dict(result.baseline)
        attrs = {
            "distill": distill,
            "baseline": baseline,
            "gap": float(result.gap),
            "params_trainable": int(result.params_trainable),
            "params_total": int(result.params_total),
            "wall_seconds": float(result.wall_seconds),
            "epochs_run": len(result.distill.dev_acc),
        }
        if result.distill.test_pred is not None:
            attrs["distill_test_pred"] = result.distill.test_pred
        if result.baseline.test_pred is not None:
            attrs["baseline_test_pred"] = result.baseline.test_pred
        if self.keep_weights is not None:
            attrs["weights"] = self.keep_weights(trial.number, result)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if self._save_note is not None:
            self._save_note(trial, trial_note(trial.number, result))


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def trial_note(number: int, result) -> str:
    """The short markdown note shown for a trial in optuna-dashboard."""
    c = result.config
    d, b = result.distill, result.baseline

    def pct(x) -> str:
        return "-" if x is None else f"{100 * x:.2f}"

    return "\n".join([
        f"## Trial {number}: {c.cell.upper()} x{c.layers}, hidden {c.hidden}, "
        f"{c.soft_loss} T={c.temperature:.2f} alpha={c.alpha:.2f}",
        "",
        "| arm | best dev % | epoch | test % | sent/s |",
        "| --- | --- | --- | --- | --- |",
        f"| distill | {pct(d.best_dev_acc)} | {d.best_epoch + 1} | {pct(d.test_acc)} | "
        f"{d.sent_per_s:.0f} |",
        f"| baseline | {pct(b.best_dev_acc)} | {b.best_epoch + 1} | {pct(b.test_acc)} | "
        f"{b.sent_per_s:.0f} |",
        "",
        f"**Gap** (distill - baseline): {100 * result.gap:+.2f} points; seed {result.seed}; "
        f"{result.params_trainable:,} trainable of {result.params_total:,} parameters; "
        f"{result.wall_seconds:.1f} s.",
    ])
