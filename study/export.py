"""Exported students: retrain a trial, save it self-contained, evaluate and predict with it.

A student file is ``torch.save`` of ``{"format", "sha256", "payload"}`` where ``payload`` is
itself the ``torch.save`` bytes of everything needed to classify raw text without the run
directory: the weights, the config, the frozen embedding matrix, the teacher tokenizer's saved
files (as bytes), the truncation length, the teacher/data hashes and the dev accuracy. The
sha256 of the payload is checked before anything in it is used, and both levels load with
``weights_only=True`` (no pickled code).
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
    with atomic_write(path) as f:
        torch.save({"format": FORMAT, "sha256": digest, "payload": body}, f)
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


# -- export -------------------------------------------------------------------------------------


def _tokenizer_files(tokenizer) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="distill-study-tok-") as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}


def export_trial(run_dir: str, name: str, which: str, arm: str, out_path: str,
                 storage: str | None = None, *, log=None) -> dict:
    """Retrain trial ``which`` of study ``name`` and save its ``arm`` as a student file.

    The trial's config, seed and budget (epochs, train subset) and the thread count it ran
    with are reproduced, so on CPU the retrained dev accuracy equals the recorded one; both
    are printed and stored.

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

    previous_threads = torch.get_num_threads()
    if attrs.get("threads"):
        torch.set_num_threads(int(attrs["threads"]))  # bit-identical only at equal threads
    try:
        data = run.pair_data(budget.get("max_train_examples"), subset_seed)
        print(f"export: retraining trial {trial.number}'s {arm} arm ({config.cell} "
              f"x{config.layers}, seed {seed}, {config.epochs} epochs, {len(data.train)} train "
              "rows)", file=log, flush=True)
        # the exported arm alone: bit-identical to it in the pair, at its cost only
        arm_result = train_arm(config, data, seed, arm, device="cpu", progress=log.isatty()
                               if hasattr(log, "isatty") else False)
    finally:
        torch.set_num_threads(previous_threads)
    retrained = float(arm_result.best_dev_acc)

    from models.student import Student

    model = Student(config.student, data.embeddings, data.pad_id, seed=seed)
    model.load_state_dict(arm_result.state_dict, strict=False)
    payload = {
        "format": FORMAT,
        "arm": arm,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "embeddings": data.embeddings.detach().cpu().contiguous(),
        "pad_id": int(data.pad_id),
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
        "test_acc": arm_result.test_acc,
        "params_trainable": int(model.num_parameters(trainable=True)),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    digest = save_student(out, payload)
    same = abs(retrained - recorded) < 1e-9
    print(f"export: trial {trial.number} {arm} arm: dev accuracy recorded {recorded:.4f}, "
          f"retrained {retrained:.4f} ({'identical' if same else 'DIFFERENT: nondeterminism'})"
          f" -> {out} (sha256 {digest[:12]})", file=log, flush=True)
    return {"trial": trial.number, "arm": arm, "recorded_dev_acc": recorded,
            "dev_acc": retrained, "sha256": digest, "path": str(out), "identical": same}


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
