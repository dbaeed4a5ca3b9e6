"""Exported students: retrain a trial, save it self-contained, evaluate and predict with it.

A student file is ``torch.save`` of ``{"format", "sha256", "payload"}`` where ``payload`` is
itself the ``torch.save`` bytes (kept as a uint8 tensor) of everything needed to classify raw
text without the run directory: the weights, the config, the frozen embedding matrix, the
teacher tokenizer's saved files (as bytes), the truncation length, the teacher/data hashes and
the dev accuracy. The sha256 of the payload is checked before anything in it is used, and
both levels load with ``weights_only=True`` (no pickled code).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from study.config import ARMS, TrialConfig
from study.errors import ArtifactError, UsageError

__all__ = [
    "FORMAT",
    "ARMS",
    "LoadedStudent",
    "export_trial",
    "save_student",
    "load_student",
    "evaluate_tsv",
    "predict_texts",
    "select_trial",
]

FORMAT = "distill-study-student/1"


# -- choosing the trial -------------------------------------------------------------------------


def select_trial(study, which: str, arm: str):
    """The trial ``which`` (``best`` or a number) of ``study``, which must be COMPLETE.

    ``best`` is the complete trial with the best dev accuracy of ``arm`` (the best-by-dev
    distilled or baseline student, whatever the study's objective), the lower number on ties.

    Raises:
        UsageError: no such trial, or it did not complete.
    """
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if which == "best":
        if not complete:
            raise UsageError(f"study {study.study_name!r} has no complete trial to export")
        def dev_acc(t) -> float:
            recorded = t.user_attrs.get(arm)
            if isinstance(recorded, dict) and recorded.get("best_dev_acc") is not None:
                return float(recorded["best_dev_acc"])
            if len(study.directions) > 1:
                return float(t.values[ARMS.index(arm)])
            return float(t.values[0]) if arm == "distill" else float("-inf")

        return max(complete, key=lambda t: (dev_acc(t), -t.number))
    try:
        number = int(which)
    except ValueError:
        raise UsageError(f"--trial must be 'best' or a trial number, got {which!r}") from None
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials:
        raise UsageError(f"study {study.study_name!r} has no trial {number} "
                         f"(it has {len(study.get_trials(deepcopy=False))})")
    trial = trials[0]
    if trial.state != TrialState.COMPLETE:
        raise UsageError(f"trial {number} is {trial.state.name}; only complete trials can be "
                         "exported (their recorded accuracy is the full budget's)")
    return trial


# -- the file -----------------------------------------------------------------------------------


def save_student(path: str | os.PathLike, payload: dict) -> str:
    """Write ``payload`` as a student file, atomically. Returns the payload's sha256."""
    from study.run import atomic_write

    inner = io.BytesIO()
    torch.save(payload, inner)
    body = inner.getvalue()
    digest = hashlib.sha256(body).hexdigest()
    # As a uint8 tensor: torch.save pickles a bytes object with protocol 2, as latin-1 text
    # re-encoded in UTF-8, which makes the file about 1.5x the payload.
    packed = torch.frombuffer(bytearray(body), dtype=torch.uint8)
    with atomic_write(path) as f:
        torch.save({"format": FORMAT, "sha256": digest, "payload": packed}, f)
    return digest


@dataclass
class LoadedStudent:
    """A student file, verified and ready to classify."""

    model: object  # models.student.Student, in eval mode
    meta: dict  # everything in the payload except weights, embeddings and tokenizer files
    tokenizer: object
    path: Path

    @property
    def max_length(self) -> int:
        return int(self.meta["max_length"])


def _read_verified(path: Path) -> dict:
    if not path.is_file():
        raise UsageError(f"--student {path}: file not found")
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, ...: one message
        raise ArtifactError(f"{path}: not a readable student file ({type(e).__name__})") from None
    if not isinstance(outer, dict) or outer.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not a distill-study student file (format "
                            f"{outer.get('format') if isinstance(outer, dict) else None!r})")
    body = outer.get("payload")
    if isinstance(body, torch.Tensor) and body.dtype == torch.uint8 and body.dim() == 1:
        body = body.numpy().tobytes()  # files written before the payload was a tensor hold bytes
    if not isinstance(body, bytes) or hashlib.sha256(body).hexdigest() != outer.get("sha256"):
        raise ArtifactError(f"{path}: payload does not match its sha256 (corrupt or edited); "
                            "export it again")
    try:
        return torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ArtifactError(f"{path}: payload unreadable ({type(e).__name__})") from None


def load_student(path: str | os.PathLike) -> LoadedStudent:
    """Load and verify a student file.

    Raises:
        UsageError: the file does not exist.
        ArtifactError: it is not a student file, or its hash does not match its payload.
    """
    from transformers import AutoTokenizer

    from models.student import Student

    path = Path(path)
    payload = _read_verified(path)
    try:
        config = TrialConfig.from_dict(payload["config"])
        model = Student(config.student, payload["embeddings"], int(payload["pad_id"]), seed=0)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, ValueError, RuntimeError) as e:
        raise ArtifactError(f"{path}: inconsistent student ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]})") from None
    model.eval()
    with tempfile.TemporaryDirectory(prefix="distill-study-tok-") as tmp:
        for name, data in payload["tokenizer_files"].items():
            if os.path.basename(name) != name:  # never write outside the temp dir
                raise ArtifactError(f"{path}: bad tokenizer file name {name!r}")
            Path(tmp, name).write_bytes(data)
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    meta = {k: v for k, v in payload.items()
            if k not in ("state_dict", "embeddings", "tokenizer_files")}
    return LoadedStudent(model, meta, tokenizer, path)


# -- kept weights ---------------------------------------------------------------------------------

WEIGHTS_FORMAT = "distill-study-weights/1"


def weights_path(run_path: Path, study_name: str, number: int) -> Path:
    """Where ``study --keep-weights`` puts trial ``number``'s two best-dev students."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name)
    return Path(run_path) / "weights" / safe / f"trial-{number}.pt"


def save_trial_weights(run_path: Path, study_name: str, number: int, result, *,
                       data_key: str, teacher_key: str) -> dict:
    """Save both arms' best-dev trainable weights of a finished trial, atomically.

    Only the trainable tensors are kept (the frozen embeddings are the run's); ``export``
    turns them into a self-contained student file without retraining. Returns the trial's
    ``weights`` user attribute: the path relative to the run directory and the file's sha256.
    """
    from study.run import atomic_write

    path = weights_path(run_path, study_name, number)
    body = io.BytesIO()
    torch.save({
        "format": WEIGHTS_FORMAT,
        "study": study_name,
        "trial": int(number),
        "seed": int(result.seed),
        "config": result.config.to_dict(),
        "data_key": data_key,
        "teacher_key": teacher_key,
        **{arm: {k: v.detach().cpu().clone() for k, v in getattr(result, arm).state_dict.items()}
           for arm in ARMS},
    }, body)
    data = body.getvalue()
    with atomic_write(path) as f:
        f.write(data)
    return {"path": str(path.relative_to(run_path)), "sha256": hashlib.sha256(data).hexdigest()}


def _load_kept_weights(run, trial, arm: str) -> dict | None:
    """The kept best-dev weights of ``arm`` of ``trial``, or None when it has none (or the file
    is gone: the study may have been copied without them). A file that does not match its
    recorded sha256 or this run is an error, not a silent retrain."""
    info = trial.user_attrs.get("weights")
    if not isinstance(info, dict) or not info.get("path"):
        return None
    path = run.path / info["path"]
    if not path.is_file():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise ArtifactError(f"{path}: does not match the sha256 recorded with trial "
                            f"{trial.number} (corrupt or replaced); export with --retrain")
    try:
        kept = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ArtifactError(f"{path}: unreadable ({type(e).__name__}); export with --retrain") \
            from None
    if kept.get("format") != WEIGHTS_FORMAT or kept.get("trial") != trial.number:
        raise ArtifactError(f"{path}: not the kept weights of trial {trial.number}")
    for key, value in (("data_key", run.data_key), ("teacher_key", run.teacher_key)):
        if kept.get(key) != value:
            raise ArtifactError(f"{path}: made with another {key.replace('_key', '')} than "
                                f"--run {run.path}")
    return kept[arm]


# -- export -------------------------------------------------------------------------------------


def _tokenizer_files(tokenizer) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="distill-study-tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def export_trial(run_dir: str, name: str, which: str, arm: str, out_path: str,
                 storage: str | None = None, *, log=None, retrain: bool = False) -> dict:
    """Save ``arm`` of trial ``which`` of study ``name`` as a student file.

    A trial run with ``--keep-weights`` (every ``study confirm`` trial) has its best-dev
    weights on disk: they are used as they are. Otherwise, or with ``retrain``, the arm is
    retrained with the trial's config, seed, budget (epochs, train subset) and thread count,
    so on CPU the retrained dev accuracy equals the recorded one; both are printed and stored.

    Returns:
        A summary dict (trial, arm, recorded and retrained dev accuracy, sha256, path).

    Raises:
        UsageError: bad arguments, unknown study or trial, a study made on other data.
    """
    import optuna

    from study.run import Run
    from study.storage import open_storage, parse_storage
    from study.train import train_arm

    log = log or sys.stderr
    if arm not in ARMS:
        raise UsageError(f"--arm must be one of {', '.join(ARMS)}, got {arm!r}")
    out = Path(out_path)
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out}: is a directory")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: directory {out.parent} does not exist")
    run = Run(run_dir)
    spec = parse_storage(storage, run.path)
    st = open_storage(spec, must_exist=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=st)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(st)]
        raise UsageError(f"no study named {name!r} in this storage (studies: "
                         f"{', '.join(names) or 'none'})") from None
    for key, value in (("data_key", run.data_key), ("teacher_key", run.teacher_key)):
        recorded = study.user_attrs.get(key)
        if recorded is not None and recorded != value:
            raise UsageError(f"study {name!r} was run on another {key.replace('_key', '')} than "
                             f"--run {run.path} ({str(recorded)[:12]} != {value[:12]})")
    trial = select_trial(study, which, arm)
    attrs = trial.user_attrs
    try:
        config = TrialConfig.from_dict(attrs["config"])
        seed = int(attrs["seed"])
        budget = attrs["budget"]
    except (KeyError, ValueError) as e:
        raise UsageError(f"trial {trial.number} lacks its config/seed/budget ({e})") from None
    recorded = float(attrs[arm]["best_dev_acc"])
    subset_seed = int(study.user_attrs.get("subset_seed", study.user_attrs.get("seed", 0)))

    kept = None if retrain else _load_kept_weights(run, trial, arm)
    if kept is not None:
        print(f"export: trial {trial.number}'s {arm} arm from its kept weights "
              f"({trial.user_attrs['weights']['path']}; --retrain retrains it)", file=log,
              flush=True)
        embeddings, pad_id = run.embeddings(), run.pad_id
        state_dict, retrained = kept, recorded
        test_acc = attrs[arm].get("test_acc")
    else:
        previous_threads = torch.get_num_threads()
        if attrs.get("threads"):
            torch.set_num_threads(int(attrs["threads"]))  # bit-identical only at equal threads
        try:
            data = run.pair_data(budget.get("max_train_examples"), subset_seed)
            print(f"export: retraining trial {trial.number}'s {arm} arm ({config.cell} "
                  f"x{config.layers}, seed {seed}, {config.epochs} epochs, {len(data.train)} "
                  "train rows)", file=log, flush=True)
            # the exported arm alone: bit-identical to it in the pair, at its cost only
            arm_result = train_arm(config, data, seed, arm, device="cpu",
                                   progress=log.isatty() if hasattr(log, "isatty") else False)
        finally:
            torch.set_num_threads(previous_threads)
        embeddings, pad_id = data.embeddings, data.pad_id
        state_dict, retrained = arm_result.state_dict, float(arm_result.best_dev_acc)
        test_acc = arm_result.test_acc

    from models.student import Student

    model = Student(config.student, embeddings, pad_id, seed=seed)
    model.load_state_dict(state_dict, strict=False)
    payload = {
        "format": FORMAT,
        "arm": arm,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "embeddings": embeddings.detach().cpu().contiguous(),
        "pad_id": int(pad_id),
        "max_length": int(run.info["max_length"]),
        "tokenizer_files": _tokenizer_files(run.tokenizer()),
        "teacher_key": run.teacher_key,
        "data_key": run.data_key,
        "dataset": run.info.get("dataset"),
        "teacher": run.info.get("teacher"),
        "study": name,
        "trial": int(trial.number),
        "seed": seed,
        "budget": json.loads(json.dumps(budget)),
        "dev_acc": retrained,
        "recorded_dev_acc": recorded,
        "test_acc": test_acc,
        "params_trainable": int(model.num_parameters(trainable=True)),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    digest = save_student(out, payload)
    same = abs(retrained - recorded) < 1e-9
    if kept is not None:
        how = f"dev accuracy {recorded:.4f} (kept weights)"
    else:
        how = (f"dev accuracy recorded {recorded:.4f}, retrained {retrained:.4f} "
               f"({'identical' if same else 'DIFFERENT: nondeterminism'})")
    print(f"export: trial {trial.number} {arm} arm: {how} -> {out} (sha256 {digest[:12]})",
          file=log, flush=True)
    return {"trial": trial.number, "arm": arm, "recorded_dev_acc": recorded,
            "dev_acc": retrained, "sha256": digest, "path": str(out), "identical": same,
            "source": "kept" if kept is not None else "retrained"}


# -- using a student ----------------------------------------------------------------------------


def _split(student: LoadedStudent, texts: list[str], labels: np.ndarray | None):
    from data_prep.prepare import tokenize_texts
    from data_prep.tokenized import TokenizedSplit

    ids, offsets = tokenize_texts(student.tokenizer, list(texts), student.max_length, "input")
    labels = labels if labels is not None else np.full(len(texts), -1, dtype=np.int64)
    return TokenizedSplit("input", ids, offsets, np.asarray(labels, dtype=np.int64),
                          np.asarray(texts, dtype=np.str_))


def _dtype(student: LoadedStudent):
    from study.device import autocast_dtype

    return autocast_dtype(torch.device("cpu"), student.meta["config"].get("precision", "fp32"))


def evaluate_tsv(student_path: str, tsv: str) -> dict:
    """Accuracy of a student file on a labeled TSV (SST-2 layout): ``{"accuracy", "n"}``."""
    from data_prep.sources import read_labeled_tsv

    data = read_labeled_tsv(tsv)
    return _evaluate_texts(student_path, data.texts, data.labels)


def evaluate_split(student_path: str, run_dir: str, split: str = "test") -> dict:
    """Accuracy of a student file on a split of a run directory: ``{"accuracy", "n", "split"}``."""
    from study.run import Run

    data = Run(run_dir).split(split)  # UsageError/ArtifactError for a missing or bad run
    return {**_evaluate_texts(student_path, list(data.texts), data.labels), "split": split}


def _evaluate_texts(student_path: str, texts, labels) -> dict:
    from study.batching import Buckets
    from study.train import evaluate

    student = load_student(student_path)
    split = _split(student, texts, labels)
    with torch.no_grad():
        acc, _loss, _pred = evaluate(student.model, Buckets(split, None, "cpu"), _dtype(student))
    return {"accuracy": float(acc), "n": len(split)}


def predict_texts(student_path: str, texts: list[str]) -> list[dict]:
    """Label (0 = negative, 1 = positive) and class probabilities for each text."""
    from study.batching import Buckets, eval_plan
    from study.device import autocast

    if not texts or any(not t.strip() for t in texts):
        raise UsageError("predict: give one or more non-empty texts")
    student = load_student(student_path)
    split = _split(student, texts, None)
    buckets = Buckets(split, None, "cpu")
    probs = torch.zeros(len(texts), 2)
    dtype = _dtype(student)
    plan = eval_plan(buckets, 256)
    with torch.no_grad():
        for b, pos in zip(plan.bucket.tolist(), plan.tensors("cpu"), strict=True):
            bucket = buckets.buckets[b]
            with autocast(torch.device("cpu"), dtype):
                logits = student.model(bucket.ids.index_select(0, pos)).logits.float()
            probs[bucket.rows.index_select(0, pos)] = torch.softmax(logits, -1)
    return [{"text": t, "label": int(p.argmax()), "probabilities": [round(float(x), 6)
                                                                     for x in p]}
            for t, p in zip(texts, probs, strict=True)]
