"""Running a study: create or resume it, then run paired trials until ``--n-trials`` finished.

``run_study(options)`` is what ``distill-study study`` (and ``study replicate``) call:

1. :func:`prepare` checks every option, the run directory and the search space, and parses the
   storage URL, before anything is opened or written (bad input -> ``UsageError``).
2. The study is created or loaded (``load_if_exists``); its attributes record the budget
   (objective, epochs, max_train_examples, seed) and the data and teacher keys, and a resumed
   study must match them. ``--enqueue-original`` enqueues the published configurations once.
3. One worker runs in this process; ``--workers K`` starts K worker processes (the same CLI
   with a hidden ``--worker-spec``) against the same storage, splitting the CPU cores or
   taking one GPU each (``CUDA_VISIBLE_DEVICES``).

``--n-trials N`` counts finished (COMPLETE + PRUNED) trials of the study, across workers and
restarts. Each worker loops: if N are finished it stops; if N are finished-or-running it waits
(a running trial may still die and be retried); otherwise it runs one trial. Two workers can
pass that check at the same moment, so the objective also ranks trials by start time and ends a
surplus one before training (``PairObjective._claim``). The result: exactly N finished trials.

Each worker's sampler is re-seeded before every trial from (study seed, finished trials, worker
index): one worker with the same seed asks the same questions in the same order, and a
resumed study continues as the uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from study.config import PRECISIONS, TrialConfig
from study.errors import UsageError
from study.objective import (
    FINISHED,
    OBJECTIVES,
    GracefulStop,
    PairObjective,
    StopRequested,
    derive_seed,
    objective_directions,
)
from study.space import (
    Space,
    apply_overrides,
    default_space,
    describe,
    original_configs,
    space_from_json,
    space_to_json,
)
from study.storage import (
    DEFAULT_GRACE,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_RETRY,
    display_url,
    open_storage,
    parse_storage,
)

__all__ = [
    "StudyOptions",
    "Prepared",
    "SAMPLERS",
    "PRUNERS",
    "prepare",
    "run_study",
    "open_study",
    "finished_count",
    "make_sampler",
    "make_pruner",
]

SAMPLERS = ("tpe", "random", "gp")
PRUNERS = ("median", "hyperband", "wilcoxon", "none")
# A worker gives up after this many unexpected trial failures in a row (a bug, not bad luck).
MAX_CONSECUTIVE_FAILURES = 3
# Budget attributes a resumed study must match (its trials are only comparable under them).
BUDGET_ATTRS = ("objective", "epochs", "max_train_examples", "data_key", "teacher_key")


@dataclass
class StudyOptions:
    """Everything ``distill-study study`` takes (None = recorded in the study, else default).

    Attributes:
        run: the run directory.
        name: the study name.
        storage: ``--storage`` (None: ``DIR/studies.db``).
        n_trials: finished trials wanted in total; None runs until stopped.
        objective, pruner, sampler: see ``--help``.
        seed: study seed (sampler, trial seeds, train subset).
        epochs, max_train_examples: the budget of every trial.
        enqueue_original: enqueue the published configurations first (once).
        fixes, ranges: search-space overrides (``NAME=VALUE``, ``NAME=LOW:HIGH``).
        workers: worker processes on this machine (None: one, or one per CUDA device).
        devices: ``cpu`` or CUDA devices, one per worker (round robin).
        precision: training precision (TrialConfig.precision).
        heartbeat, grace_period, max_retry: RDB heartbeat settings (seconds, retries).
        pruner_startup: complete trials before median/percentile pruning starts.
        space: an explicit space instead of default + overrides (tests, workers).
        base: an explicit base config (tests, workers); ``epochs``/``precision`` go into it.
        replicate_top, replicate_seeds: ``study replicate``: K best configs x S seeds, or
            with ``confirm_from``, ``study confirm``: K best configs x S seeds of that study.
        confirm_from: ``study confirm``: the source study whose best configurations this
            study (``name``) re-runs at its own budget (multi-fidelity: explore on a subset,
            confirm on the full train set).
        source_any_teacher: ``study confirm``: take the source's configurations even when the
            source was run on another teacher checkpoint of the same data (a teacher
            re-trained with the same recipe, a bigger teacher); recorded as
            ``source_teacher_key``, and the report says so.
        keep_weights: save both arms' best-dev weights of every complete trial under
            ``DIR/weights/NAME/`` (``export`` then needs no retraining).
        worker_index: set in worker processes only.
        poll: seconds between checks while waiting for other workers' trials.
    """

    run: str
    name: str
    storage: str | None = None
    n_trials: int | None = None
    objective: str | None = None
    pruner: str = "median"
    sampler: str = "tpe"
    seed: int | None = None
    epochs: int | None = None
    max_train_examples: int | None = None
    enqueue_original: bool = False
    fixes: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    workers: int | None = None
    devices: list[str] = field(default_factory=lambda: ["cpu"])
    precision: str = "auto"
    heartbeat: int = DEFAULT_HEARTBEAT
    grace_period: int = DEFAULT_GRACE
    max_retry: int = DEFAULT_MAX_RETRY
    pruner_startup: int = 5
    space: Space | None = None
    base: TrialConfig | None = None
    replicate_top: int | None = None
    replicate_seeds: int | None = None
    confirm_from: str | None = None
    source_any_teacher: bool = False
    keep_weights: bool = False
    worker_index: int | None = None
    poll: float = 1.0

    def to_json(self) -> str:
        """The options for a worker process (space and base serialised)."""
        d = dataclasses.asdict(self)
        d["space"] = None if self.space is None else space_to_json(self.space)
        d["base"] = None if self.base is None else self.base.to_dict()
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> StudyOptions:
        d = json.loads(text)
        if d.get("space") is not None:
            d["space"] = space_from_json(d["space"])
        if d.get("base") is not None:
            d["base"] = TrialConfig.from_dict(d["base"])
        return cls(**d)


@dataclass
class Prepared:
    """Checked options plus what was read from the run directory (nothing opened yet)."""

    options: StudyOptions
    run: object
    storage_spec: object
    space: Space
    base: TrialConfig
    devices: list[str]
    workers: int
    data_key: str
    teacher_key: str


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise UsageError(message)


def _max_augment_factor(run) -> int:
    """How many augmented copies per training sentence the run's transfer set holds."""
    manifest = Path(run.path) / "augment" / "manifest.json"
    if not manifest.is_file():
        return 0
    try:
        info = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        info = {}
    for key in ("factor", "augment_factor", "copies"):
        if isinstance(info.get(key), int):
            return int(info[key])
    aug = run.augmented()
    if aug is None:
        return 0
    return len(aug[0]) // max(1, int(run.info["sizes"]["train"]))


def _parse_devices(devices: list[str], workers: int | None) -> tuple[list[str], int]:
    from study.device import resolve_device

    devices = [d.strip() for d in devices if d.strip()] or ["cpu"]
    for d in devices:
        resolve_device(d)  # UsageError for CUDA on a machine without it, or a bad index
    cuda = [d for d in devices if d.startswith("cuda")]
    if cuda and len(cuda) != len(devices):
        raise UsageError("--devices: list either cpu or CUDA devices, not both")
    if workers is None:
        workers = len(devices) if cuda else 1
    return devices, workers


def prepare(options: StudyOptions) -> Prepared:
    """Check every option and the run directory; open and write nothing.

    Raises:
        UsageError: the first problem found, as one line.
    """
    from study.run import Run

    o = options
    _check(bool(o.name and o.name.strip()), "--name must not be empty")
    _check(o.n_trials is None or o.n_trials >= 1, f"--n-trials must be >= 1, got {o.n_trials}")
    _check(o.workers is None or o.workers >= 1, f"--workers must be >= 1, got {o.workers}")
    _check(o.objective is None or o.objective in OBJECTIVES,
           f"--objective must be one of {', '.join(OBJECTIVES)}, got {o.objective!r}")
    _check(o.pruner in PRUNERS, f"--pruner must be one of {', '.join(PRUNERS)}, got {o.pruner!r}")
    _check(o.sampler in SAMPLERS,
           f"--sampler must be one of {', '.join(SAMPLERS)}, got {o.sampler!r}")
    _check(o.epochs is None or o.epochs >= 1, f"--epochs must be >= 1, got {o.epochs}")
    _check(o.max_train_examples is None or o.max_train_examples >= 1,
           f"--max-train-examples must be >= 1, got {o.max_train_examples}")
    _check(o.seed is None or o.seed >= 0, f"--seed must be >= 0, got {o.seed}")
    _check(o.precision in PRECISIONS,
           f"--precision must be one of {', '.join(PRECISIONS)}, got {o.precision!r}")
    _check(o.heartbeat >= 1, f"--heartbeat must be >= 1 second, got {o.heartbeat}")
    _check(o.grace_period > o.heartbeat,
           f"--grace-period ({o.grace_period}) must exceed --heartbeat ({o.heartbeat})")
    if o.replicate_top is not None or o.replicate_seeds is not None:
        _check((o.replicate_top or 0) >= 1, f"--top must be >= 1, got {o.replicate_top}")
        _check((o.replicate_seeds or 0) >= 1, f"--seeds must be >= 1, got {o.replicate_seeds}")
    if o.confirm_from is not None:
        _check(bool(o.confirm_from.strip()), "--from must not be empty")
        _check(o.confirm_from != o.name,
               f"--from and --name are both {o.name!r}: confirm into a new study")
        _check(o.replicate_top is not None, "study confirm: --top K is required")
        _check(not o.ranges, "study confirm: --range does not apply (the source study's "
                             "configurations are used; --fix NAME=VALUE replaces a parameter "
                             "of each)")
    devices, workers = _parse_devices(o.devices, o.workers)

    run = Run(o.run)  # UsageError when missing
    data_key = run.data_key
    teacher_key = run.teacher_key  # ArtifactError without a teacher for this data
    run.verify()  # ArtifactError for a corrupt, stale or foreign split, logits or embeddings
    spec = parse_storage(o.storage, run.path)

    if o.space is not None:
        space = apply_overrides(o.space, o.fixes, o.ranges)
    else:
        space = apply_overrides(default_space(_max_augment_factor(run)), o.fixes, o.ranges)
    base = o.base or TrialConfig()
    try:
        base = dataclasses.replace(base, precision=o.precision,
                                   **({"epochs": o.epochs} if o.epochs else {}))
    except ValueError as e:
        raise UsageError(str(e)) from None
    return Prepared(o, run, spec, space, base, devices, workers, data_key, teacher_key)


# -- the study -------------------------------------------------------------------------------


def open_study(p: Prepared, *, create: bool, heartbeat: bool = True) -> optuna.Study:
    """Open the storage and create or load the study (no attributes written here)."""
    o = p.options
    storage = open_storage(
        p.storage_spec,
        must_exist=not create,
        heartbeat_interval=o.heartbeat if heartbeat else None,
        grace_period=o.grace_period if heartbeat else None,
        max_retry=o.max_retry,
    )
    if not create:
        try:
            return optuna.load_study(study_name=o.name, storage=storage)
        except KeyError:
            raise UsageError(_unknown_study(o.name, storage)) from None
    existing = _study_attrs(storage, o.name)
    objective = o.objective or (existing or {}).get("objective") or "distill"
    try:
        return optuna.create_study(study_name=o.name, storage=storage, load_if_exists=True,
                                   directions=objective_directions(objective))
    except ValueError as e:
        raise UsageError(f"study {o.name!r}: {e}") from None


def _unknown_study(name: str, storage) -> str:
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    listed = ", ".join(names[:20]) if names else "none"
    return f"no study named {name!r} in this storage (studies: {listed})"


def _study_attrs(storage, name: str) -> dict | None:
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)


def _may_augment(space: Space, stored: str | None) -> bool:
    """Whether trials of this space, or of the recorded one, may train on augmented rows."""
    spaces = [space] + ([space_from_json(stored)] if stored else [])
    return any(q.name == "augment_factor" and (q.high or 0) > 0 for sp in spaces for q in sp)


def _resolve_budget(p: Prepared, attrs: dict, *, same_teacher: bool = True,
                    same_augment: bool = True, teacher_hint: str = "") -> dict:
    """The budget of this study: recorded values win; explicit different ones are refused, as
    is a study made on other data (or another teacher, unless ``same_teacher`` is False; the
    refusal ends with ``teacher_hint``; or another augmented set, unless ``same_augment`` is
    False: ``augment`` made again with other settings changes what ``augment_factor`` means)."""
    o = p.options
    given = {"objective": o.objective, "epochs": o.epochs,
             "max_train_examples": o.max_train_examples, "seed": o.seed}
    defaults = {"objective": "distill", "epochs": p.base.epochs, "max_train_examples": None,
                "seed": 0}
    out = {}
    for key, value in given.items():
        if key in attrs:
            if value is not None and value != attrs[key]:
                raise UsageError(
                    f"study {o.name!r} was run with {key}={attrs[key]}, not {value}; resume "
                    f"with the same budget or use another --name"
                )
            out[key] = attrs[key]
        else:
            out[key] = value if value is not None else defaults[key]
    keys = [("data_key", p.data_key)]
    if same_teacher:
        keys.append(("teacher_key", p.teacher_key))
    if same_augment and _may_augment(p.space, attrs.get("space")):
        keys.append(("augment_key", p.run.augment_key))
    for key, value in keys:
        if key in attrs and attrs[key] != value:
            hint = teacher_hint if key == "teacher_key" else ""
            if key == "augment_key" and not _may_augment((), attrs.get("space")):
                hint = " (or --fix augment_factor=0: its trials had no augmented rows)"
            what = ("augmented set" if key == "augment_key"
                    else key.replace("_key", ""))
            raise UsageError(
                f"study {o.name!r} was run on another {what} "
                f"({str(attrs[key])[:12]} != {str(value)[:12]} in --run {p.run.path}); use the "
                f"run it was made with or another --name{hint}"
            )
    return out


def _record_attrs(study: optuna.Study, p: Prepared, budget: dict) -> None:
    """Study attributes of docs/ARCHITECTURE.md (written once; the space every time)."""
    attrs = study.user_attrs
    if "epochs" not in attrs:
        info = p.run.info
        for key, value in {
            "objective": budget["objective"],
            "epochs": budget["epochs"],
            "max_train_examples": budget["max_train_examples"],
            "seed": budget["seed"],
            "subset_seed": budget["seed"],
            "data_key": p.data_key,
            "teacher_key": p.teacher_key,
            "augment_key": p.run.augment_key,
            "dataset": info.get("dataset"),
            "teacher": info.get("teacher"),
            "test_size": int(info.get("sizes", {}).get("test", 0)),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }.items():
            study.set_user_attr(key, value)
    if attrs.get("space") != space_to_json(p.space):
        study.set_user_attr("space", space_to_json(p.space))


def finished_count(study: optuna.Study) -> int:
    """COMPLETE + PRUNED trials."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _running_count(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if not t.user_attrs.get("surplus"))


def _enqueue_original(study: optuna.Study, space: Space, out) -> int:
    if study.user_attrs.get("original_enqueued"):
        return 0
    configs = original_configs(space)
    for params in configs:
        study.enqueue_trial(params, skip_if_exists=True)
    study.set_user_attr("original_enqueued", len(configs))
    print(f"enqueued the original study's {len(configs)} configurations", file=out, flush=True)
    return len(configs)


def _enqueue_replicates(study: optuna.Study, top: int, seeds: int, out) -> int:
    """Give each of the ``top`` best configurations ``seeds`` seed replicates (idempotent)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if "replicate_of" not in t.user_attrs]
    _check(bool(complete), f"study {study.study_name!r} has no complete trial to replicate")
    complete.sort(key=lambda t: (-t.values[0], t.number))
    chosen, seen = [], set()
    for t in complete:
        cid = t.user_attrs.get("config_id", t.number)
        if cid not in seen:
            seen.add(cid)
            chosen.append(t)
        if len(chosen) == top:
            break
    existing: dict[int, set[int]] = {}
    for t in study.get_trials(deepcopy=False):
        # A pruned replicate (made before replicates ran unpruned) is replaced by a new seed.
        if "replicate_of" in t.user_attrs and t.state not in (TrialState.FAIL,
                                                               TrialState.PRUNED):
            existing.setdefault(int(t.user_attrs["replicate_of"]), set()).add(
                int(t.user_attrs.get("seed", -1)))
    study_seed = int(study.user_attrs.get("seed", 0))
    added = 0
    for t in chosen:
        have = existing.get(t.number, set())
        j = 0
        while len(have) < seeds:
            j += 1
            seed = derive_seed(study_seed, t.number, 1000 + j)
            if seed in have or seed == t.user_attrs.get("seed"):
                continue
            study.enqueue_trial(dict(t.params), user_attrs={"seed": seed,
                                                            "replicate_of": t.number})
            have.add(seed)
            added += 1
    print(f"replicate: top {len(chosen)} configuration(s) (trials "
          f"{', '.join(str(t.number) for t in chosen)}) x {seeds} seed(s); {added} new trial(s) "
          "enqueued", file=out, flush=True)
    return added


def _open_confirm(p: Prepared) -> tuple[optuna.Study, optuna.Study, dict]:
    """``study confirm``: the source study and the confirm study (created) with its budget.

    The confirm study runs the source's space, objective and seed at its own budget:
    ``--epochs`` (default: the source's) and ``--max-train-examples`` (default: all of train).
    """
    o = p.options
    storage = open_storage(p.storage_spec, must_exist=True)
    existing = _study_attrs(storage, o.name)
    if existing is not None and existing.get("confirm_from") != o.confirm_from:
        made = (f"confirms {existing['confirm_from']!r}" if existing.get("confirm_from")
                else "is not a confirm study")
        raise UsageError(f"study {o.name!r} already exists and {made}; use another --name")
    src_p = dataclasses.replace(p, options=dataclasses.replace(
        o, name=o.confirm_from, objective=None, epochs=None, max_train_examples=None,
        seed=None))
    source = open_study(src_p, create=False, heartbeat=False)
    _check("epochs" in source.user_attrs,
           f"study {o.confirm_from!r} has no recorded budget; run 'distill-study study' first")
    # same data and teacher, or refused; another teacher only when asked (and recorded)
    src_budget = _resolve_budget(
        src_p, source.user_attrs, same_teacher=not o.source_any_teacher, same_augment=False,
        teacher_hint=" (study confirm: --from-any-teacher takes its configurations anyway)")
    if o.objective is not None and o.objective != src_budget["objective"]:
        raise UsageError(f"study confirm: --objective {o.objective} differs from study "
                         f"{o.confirm_from!r}'s ({src_budget['objective']})")
    fixes = _confirm_fixes(p)
    mine = {q.name: q for q in p.space}  # this run's space, the fixes applied and checked
    stored = source.user_attrs.get("space")
    if stored:
        p.space = space_from_json(stored)  # the source's configurations must fit the space
    # a fixed value replaces the source's range for that parameter
    p.space = tuple(mine[q.name] if q.name in fixes else q for q in p.space)
    _check_augment_copies(source, o.replicate_top, fixes, _max_augment_factor(p.run))
    if existing is not None and existing.get("confirm_fixes", {}) != fixes:
        raise UsageError(
            f"study {o.name!r} was made with --fix {_fmt_fixes(existing.get('confirm_fixes', {}))},"
            f" not {_fmt_fixes(fixes)}; resume with the same --fix or use another --name")
    p.options = dataclasses.replace(o, objective=src_budget["objective"],
                                    epochs=o.epochs or src_budget["epochs"],
                                    seed=src_budget["seed"], pruner="none")
    if existing is not None:
        _resolve_budget(p, existing)  # a different budget is refused before anything is written
    study = open_study(p, create=True)
    budget = _resolve_budget(p, study.user_attrs)
    _record_attrs(study, p, budget)
    study.set_user_attr("confirm_from", o.confirm_from)
    if fixes:
        study.set_user_attr("confirm_fixes", fixes)
    source_teacher = source.user_attrs.get("teacher_key")
    if source_teacher and source_teacher != p.teacher_key:
        study.set_user_attr("source_teacher_key", source_teacher)
    return source, study, budget


def _confirm_fixes(p: Prepared) -> dict:
    """``study confirm --fix NAME=VALUE``: the values that replace the source configurations'
    own (e.g. more augmented copies), as ``{name: value}``; {} without --fix."""
    names = [text.partition("=")[0].strip() for text in p.options.fixes]
    by_name = {q.name: q for q in p.space}  # prepare() applied and checked the fixes
    return {n: by_name[n].value for n in names}


def _fmt_fixes(fixes: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(fixes.items())) or "(none)"


def _ranked_configs(source: optuna.Study, top: int) -> list[list]:
    """The ``top`` best configurations of ``source``: each a list of its COMPLETE trials
    (the first trial first, replicates after), ranked by their mean objective."""
    complete = [t for t in source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values]
    _check(bool(complete), f"study {source.study_name!r} has no complete trial to confirm")
    groups: dict[str, list] = {}
    for t in complete:
        groups.setdefault(str(t.user_attrs.get("config_id", t.number)), []).append(t)
    for g in groups.values():
        g.sort(key=lambda t: ("replicate_of" in t.user_attrs, t.number))
    return sorted(groups.values(),
                  key=lambda g: (-sum(t.values[0] for t in g) / len(g), g[0].number))[:top]


def _check_augment_copies(source: optuna.Study, top: int, fixes: dict, copies: int) -> None:
    """Refuse confirm configurations that ask for more augmented copies than the run holds."""
    short = [g[0].number for g in _ranked_configs(source, top)
             if {**g[0].params, **fixes}.get("augment_factor", 0) > copies]
    _check(not short, f"study confirm: trial(s) {', '.join(map(str, short))} of study "
                      f"{source.study_name!r} train on augmented rows, and the run's augmented "
                      f"set holds {copies} copies of train (run 'distill-study augment "
                      "--factor N' first, or --fix augment_factor=0)")


def _enqueue_confirms(source: optuna.Study, study: optuna.Study, top: int, seeds: int,
                      out, fixes: dict | None = None) -> int:
    """Enqueue the ``top`` best configurations of ``source`` with ``seeds`` seeds each.

    Configurations are ranked by their mean objective over all their COMPLETE trials in the
    source (seed replicates included); the seeds are the ones the source ran, the first
    trial's first, then new derived ones when ``seeds`` asks for more; ``fixes`` replace
    parameters of every configuration. Trials are enqueued seed-major (every configuration's
    first seed, then every configuration's second, ...), so that a study stopped part-way
    holds the configurations evenly and its first pairs are comparable. Idempotent.
    """
    ranked = _ranked_configs(source, top)
    existing = {(int(t.user_attrs["confirm_of"]), int(t.user_attrs.get("seed", -1)))
                for t in study.get_trials(deepcopy=False)
                if "confirm_of" in t.user_attrs and t.state != TrialState.FAIL}
    study_seed = int(source.user_attrs.get("seed", 0))
    wanted = []
    for g in ranked:
        first = g[0]
        mine = list(dict.fromkeys(int(t.user_attrs["seed"]) for t in g if "seed" in t.user_attrs))
        j = 0
        while len(mine) < seeds:
            j += 1
            seed = derive_seed(study_seed, first.number, 2000 + j)
            if seed not in mine:
                mine.append(seed)
        wanted.append(mine[:seeds])
    added = 0
    for k in range(seeds):
        for g, mine in zip(ranked, wanted, strict=True):
            first, seed = g[0], mine[k]
            if (first.number, seed) in existing:
                continue
            attrs = {"seed": seed, "confirm_of": first.number}
            if k:
                attrs["replicate_of"] = first.number  # one primary row per configuration
            study.enqueue_trial({**first.params, **(fixes or {})}, user_attrs=attrs)
            added += 1
    means = ", ".join(f"{g[0].number} ({100 * sum(t.values[0] for t in g) / len(g):.1f}"
                      f"{'' if len(g) == 1 else f' over {len(g)} seeds'})" for g in ranked)
    with_fixes = f", with {_fmt_fixes(fixes)}" if fixes else ""
    print(f"confirm: top {len(ranked)} configuration(s) of study {source.study_name!r} "
          f"(trials {means}) x {seeds} seed(s){with_fixes}; {added} new trial(s) enqueued",
          file=out, flush=True)
    return added


# -- sampler, pruner -------------------------------------------------------------------------


def make_sampler(kind: str, seed: int, multi_objective: bool = False) -> optuna.samplers.BaseSampler:
    """A seeded sampler; TPE is multivariate and uses the constant liar for parallel workers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def make_pruner(kind: str, epochs: int, startup: int = 5) -> optuna.pruners.BasePruner:
    """The pruner for ``--pruner``; steps are epochs (1-based).

    Median pruning starts after a third of the epochs: the first epochs of a warm-up schedule
    say little about the final accuracy.
    """
    warmup = max(1, epochs // 3)
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                              reduction_factor=3)
    if kind == "wilcoxon":
        # Steps are epochs here, not instances: the test pairs this trial's per-epoch best dev
        # accuracy with the best trial's at the same epochs. Few epochs = little power.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=warmup)
    return optuna.pruners.NopPruner()


# -- running ---------------------------------------------------------------------------------


class _QuietTrials(logging.Filter):
    """Hide Optuna's failure log for trials that ended on purpose (surplus or stopped)."""

    def __init__(self, numbers: set) -> None:
        super().__init__()
        self.numbers = numbers

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(msg.startswith(f"Trial {n} failed") for n in self.numbers)


def _fmt_acc(attrs: dict, arm: str) -> str:
    value = (attrs.get(arm) or {}).get("best_dev_acc")
    return "  -  " if value is None else f"{value:.3f}"


def _trial_line(t, finished: int, target: int | None, prefix: str) -> str:
    a = t.user_attrs
    seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
        if t.datetime_complete and t.datetime_start else 0.0
    gap = a.get("gap")
    gap_s = "   -  " if gap is None else f"{gap:+.3f}"
    extra = ""
    if t.state == TrialState.FAIL:
        extra = "  " + (a.get("fail_reason") or ("interrupted" if a.get("interrupted") else ""))
    elif t.state == TrialState.PRUNED:
        extra = f"  after epoch {a.get('epochs_run', '?')}"
    total = f"{finished}/{target}" if target else f"{finished}"
    return (f"{prefix}trial {t.number:>4} {t.state.name:<8} distill {_fmt_acc(a, 'distill')} "
            f"baseline {_fmt_acc(a, 'baseline')} gap {gap_s} {seconds:6.1f}s  "
            f"[finished {total}]{extra}")


def _worker_loop(p: Prepared, study: optuna.Study, budget: dict, target: int | None,
                 stop: GracefulStop, index: int, device: str, out) -> int:
    """Load the data once, then run trials until the target is reached. Returns exit status."""
    o = p.options
    multi = budget["objective"] == "both"
    prune = o.pruner != "none" and not multi
    data = p.run.pair_data(budget["max_train_examples"], int(study.user_attrs.get(
        "subset_seed", budget["seed"])))
    stop.check()
    objective = PairObjective(
        data=data, space=p.space, base=dataclasses.replace(p.base, epochs=budget["epochs"]),
        objective=budget["objective"], study_seed=budget["seed"],
        max_train_examples=budget["max_train_examples"], device=device, n_trials=target,
        prune=prune, stop=stop,
    )
    study.pruner = make_pruner(o.pruner if prune else "none", budget["epochs"], o.pruner_startup)
    prefix = f"[w{index}] " if p.workers > 1 else ""
    # trials of minutes (full train, big students) show an epoch line at most once a minute
    objective.epoch_line = lambda line: print(prefix + line, file=out, flush=True)
    if o.keep_weights:
        from study.export import save_trial_weights

        objective.keep_weights = functools.partial(
            save_trial_weights, p.run.path, o.name, data_key=p.data_key,
            teacher_key=p.teacher_key)
    quiet = _QuietTrials(objective.quiet)
    # A logger's filters see only records made on that logger, not its children's: attach
    # to the module that logs failed trials.
    optuna_logger = logging.getLogger("optuna.study._optimize")
    optuna_logger.addFilter(quiet)
    failures = 0

    def report(study_: optuna.Study, trial) -> None:
        if trial.number in objective.quiet:
            return
        print(_trial_line(trial, finished_count(study_), target, prefix), file=out, flush=True)

    try:
        while True:
            stop.check()
            finished = finished_count(study)
            if target is not None and finished >= target:
                return 0
            if target is not None and finished + _running_count(study) >= target:
                # Others' trials would finish the study, unless one dies: keep watching.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                _sleep(o.poll, stop)
                continue
            study.sampler = make_sampler(o.sampler, derive_seed(budget["seed"], finished, index,
                                                                7), multi)
            before = {t.number for t in study.get_trials(deepcopy=False)}
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[report])
            stop.check()
            mine = [t for t in study.get_trials(deepcopy=False) if t.number not in before
                    and t.user_attrs.get("worker") == objective.worker]
            if any(t.state == TrialState.FAIL and t.number not in objective.quiet for t in mine):
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    reason = mine[-1].user_attrs.get("fail_reason", "see the log above")
                    print(f"distill-study: error: {failures} trials in a row failed in this "
                          f"worker; last: {reason}", file=sys.stderr, flush=True)
                    return 1
            elif any(t.state in FINISHED for t in mine):
                failures = 0
    finally:
        optuna_logger.removeFilter(quiet)


def _sleep(seconds: float, stop: GracefulStop) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        stop.check()
        time.sleep(min(0.1, seconds))


def _stop_message(stop_sig: int, study: optuna.Study | None, target: int | None) -> str:
    name = signal.Signals(stop_sig).name
    counts = ""
    if study is not None:
        counts = f"; {finished_count(study)}" + (f"/{target}" if target else "") + \
                 " trials finished"
    return (f"distill-study: stopped by {name}: the running trial was ended and re-queued"
            f"{counts}; run the same command again to resume")


def _queued_target(study: optuna.Study, added: int, action: str, out) -> int | None:
    """Finished + running + waiting trials: the target of a replicate/confirm run (a running
    trial counts: it finishes, or its stale-heartbeat retry does); None if nothing to run.
    Another process joining a confirm run as an extra worker thus takes the waiting trials
    instead of waiting for the running ones to end."""
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    if added == 0 and waiting == 0:
        print(f"{action}: nothing to run", file=out, flush=True)
        return None
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    return finished_count(study) + running + waiting


def run_study(options: StudyOptions, out=None) -> int:
    """Create or resume the study and run it to ``n_trials`` finished trials.

    Args:
        options: the command's options.
        out: where progress lines go (default: stdout).

    Returns:
        The exit status: 0 when the study reached its target, 130/143 when stopped by
        SIGINT/SIGTERM (the study is consistent and resumable), 1 when workers failed.

    Raises:
        UsageError: bad options, run directory or storage, or a resumed study whose budget
            or data differ.
    """
    out = out or sys.stdout
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    p = prepare(options)
    o = p.options
    stop = GracefulStop()
    study = None
    target = o.n_trials
    with stop.installed():
        try:
            if o.worker_index is not None:
                return _run_worker(p, stop, out)
            replicate = o.replicate_top is not None and o.confirm_from is None
            if o.confirm_from is not None:
                source, study, budget = _open_confirm(p)
                o = p.options
                added = _enqueue_confirms(source, study, o.replicate_top,
                                          o.replicate_seeds or 1, out,
                                          study.user_attrs.get("confirm_fixes", {}))
                target = _queued_target(study, added, "confirm", out)
                if target is None:
                    return 0
            else:
                study = open_study(p, create=not replicate)
                budget = _resolve_budget(p, study.user_attrs)
            if replicate:
                _check("epochs" in study.user_attrs,
                       f"study {o.name!r} has no recorded budget; run 'distill-study study' first")
                stored = study.user_attrs.get("space")
                if stored and o.space is None and not (o.fixes or o.ranges):
                    p.space = space_from_json(stored)
                added = _enqueue_replicates(study, o.replicate_top, o.replicate_seeds, out)
                # Seed replicates measure seed noise: pruning them would keep only lucky seeds.
                o = p.options = dataclasses.replace(o, pruner="none")
                target = _queued_target(study, added, "replicate", out)
                if target is None:
                    return 0
            else:
                _record_attrs(study, p, budget)
                if o.enqueue_original:
                    _enqueue_original(study, p.space, out)
            p.options = dataclasses.replace(o, objective=budget["objective"],
                                            epochs=budget["epochs"],
                                            max_train_examples=budget["max_train_examples"],
                                            seed=budget["seed"], n_trials=target,
                                            space=p.space, fixes=[], ranges=[],
                                            replicate_top=None, replicate_seeds=None,
                                            confirm_from=None)
            _print_header(p, study, budget, target, out)
            if p.workers == 1:
                status = _worker_loop(p, study, budget, target, stop, 0, _device_for(p, 0),
                                      out)
            else:
                status = _spawn_workers(p, stop, out)
            if stop.requested:
                raise StopRequested(stop.signum)
            done = finished_count(study)
            print(f"study {o.name!r}: {done}" + (f"/{target}" if target else "") +
                  " trials finished", file=out, flush=True)
            if target is not None:
                # Reaching the target is what counts: a worker that died on the way (its
                # trial retried by the heartbeat) was reported above but lost nothing.
                status = 0 if done >= target else max(status, 1)
            return status
        except StopRequested as e:
            print(_stop_message(e.signum, study, target), file=sys.stderr, flush=True)
            return 128 + e.signum


def _print_header(p: Prepared, study: optuna.Study, budget: dict, target, out) -> None:
    o = p.options
    multi = budget["objective"] == "both"
    if multi and o.pruner != "none":
        print("note: Optuna cannot prune multi-objective studies; --objective both runs "
              "without pruning", file=sys.stderr, flush=True)
    done = finished_count(study)
    print(f"study {o.name!r} in {display_url(p.storage_spec.url)}: objective "
          f"{budget['objective']}, {budget['epochs']} epoch(s), train "
          f"{budget['max_train_examples'] or 'all'}, sampler {o.sampler}, pruner "
          f"{'none' if multi else o.pruner}, seed {budget['seed']}; {done} finished, target "
          f"{target if target else 'until stopped'}; {p.workers} worker(s)", file=out,
          flush=True)
    print(f"space: {describe(p.space)}", file=out, flush=True)


def _device_for(p: Prepared, index: int) -> str:
    device = p.devices[index % len(p.devices)]
    if device.startswith("cuda") and p.workers > 1:
        return "cuda:0"  # the worker sees only its own GPU (CUDA_VISIBLE_DEVICES)
    return device


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _run_worker(p: Prepared, stop: GracefulStop, out) -> int:
    """Body of a worker process: the study exists and its attributes are recorded."""
    import torch

    o = p.options
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, _cores() // p.workers)
    torch.set_num_threads(threads)
    study = open_study(p, create=False)
    budget = _resolve_budget(p, study.user_attrs)
    return _worker_loop(p, study, budget, o.n_trials, stop, o.worker_index,
                        _device_for(p, o.worker_index), out)


def _spawn_workers(p: Prepared, stop: GracefulStop, out) -> int:
    """Run ``p.workers`` worker processes of this CLI and wait for them."""
    o = p.options
    threads = max(1, _cores() // p.workers)
    procs: list[subprocess.Popen] = []
    for i in range(p.workers):
        env = dict(os.environ)
        device = p.devices[i % len(p.devices)]
        if device.startswith("cuda"):
            env["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1] if ":" in device else "0"
        else:
            # Split the cores so K workers do not oversubscribe them (torch reads these at
            # import; the worker also calls torch.set_num_threads).
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        spec = dataclasses.replace(o, worker_index=i).to_json()
        # The worker entry point lives here rather than in the CLI so that a worker never
        # depends on unrelated subcommands importing cleanly.
        cmd = [sys.executable, "-m", "study.runner", "--worker-spec", spec]
        procs.append(subprocess.Popen(cmd, env=env, stdout=out if _has_fileno(out) else None))
    print(f"started {len(procs)} worker(s): pids {', '.join(str(q.pid) for q in procs)}; "
          f"{threads} thread(s) each" if not any(d.startswith('cuda') for d in p.devices)
          else f"started {len(procs)} worker(s), one per GPU", file=out, flush=True)
    codes = _wait_all(procs, stop)
    died = [(i, c) for i, c in enumerate(codes) if c not in (0, 130, 143)]
    for i, c in died:
        how = f"signal {-c}" if c < 0 else f"status {c}"
        print(f"worker {i} (pid {procs[i].pid}) ended with {how}; a trial it was running is "
              "retried once its heartbeat goes stale", file=sys.stderr, flush=True)
    if any(c in (130, 143) for c in codes) and not stop.requested:
        stop.signum = signal.SIGTERM  # a worker was stopped from outside: report it
    return 0 if not died else 1


def _wait_all(procs: list, stop: GracefulStop, interval: float = 0.1) -> list[int]:
    """Wait for every process, forwarding a stop request to those still running; return their
    exit codes. Every process is polled each round, so one that ends before the others is
    reaped at once (no zombie) rather than when those listed before it have ended."""
    forwarded = False
    while True:
        running = [q for q in procs if q.poll() is None]  # not any(): it would stop polling
        if not running:
            return [q.returncode for q in procs]
        if stop.requested and not forwarded:
            for q in running:
                q.send_signal(signal.SIGTERM)
            forwarded = True
        time.sleep(interval)


def _has_fileno(stream) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _worker_main(argv: list[str] | None = None) -> int:
    """``python -m study.runner --worker-spec JSON``: one worker process of ``--workers K``."""
    import argparse

    parser = argparse.ArgumentParser(prog="distill-study worker")
    parser.add_argument("--worker-spec", required=True)
    args = parser.parse_args(argv)
    try:
        return run_study(StudyOptions.from_json(args.worker_spec))
    except UsageError as e:
        print(f"distill-study: error: {e}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    status = _worker_main()
    # Everything a worker did is committed to the storage by now. Skip the interpreter's
    # teardown of torch and friends, which takes seconds of CPU after training and would
    # delay a Ctrl-C/SIGTERM stop (issue 6.4); multiprocessing ends its children this way.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
