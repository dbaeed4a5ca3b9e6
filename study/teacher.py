"""``distill-study teacher``: fine-tune the teacher, cache its logits, save what students need.

The teacher is fine-tuned once per run directory; the checkpoint with the best dev accuracy is
kept. Its logits on every split are cached *raw* (temperature is applied when they are read),
beside a manifest that ties them to the run's data key and the checkpoint's hash. The teacher's
word-embedding matrix is saved for the students, which copy and freeze it as the study we
reproduce did. Diagnostics (accuracy, confidence, calibration, entropy of softened targets)
are saved as data for the report: they test the claim that an over-confident teacher's logits
say little more than the labels.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from data_prep.splits import stratified_subset
from data_prep.tokenized import TokenizedSplit
from study.device import autocast, autocast_dtype, resolve_device
from study.errors import UsageError
from study.progress import progress
from study.run import SPLITS, Run, atomic_dir, sha256_file, write_json

__all__ = ["TeacherSettings", "fine_tune", "teacher_logits", "diagnostics", "bench_teacher",
           "bucket_batches", "load_teacher_model"]

TEMPERATURES = (1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class TeacherSettings:
    """How the teacher is fine-tuned (recorded in the manifest).

    Defaults: AdamW lr 5e-5, batch 32, 2 epochs, 10% linear warm-up then linear decay, word
    embeddings frozen (on CPU the 30k x H embedding matrix dominates an optimizer step; the
    students copy this matrix, so freezing also keeps it identical to the pre-trained one).
    """

    epochs: int = 2
    lr: float = 5e-5
    batch_size: int = 32
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_train_examples: int | None = None
    freeze_embeddings: bool = True
    evals_per_epoch: int = 4
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.max_train_examples is not None and self.max_train_examples < 2:
            raise UsageError(f"--max-train-examples must be >= 2, got {self.max_train_examples}")
        if self.evals_per_epoch < 1:
            raise UsageError(f"--evals-per-epoch must be >= 1, got {self.evals_per_epoch}")


def load_teacher_model(path: str | os.PathLike, num_labels: int = 2):
    """A sequence classifier from a hub id or directory; a one-line UsageError if it fails."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=num_labels)
    except Exception as e:  # noqa: BLE001 - one clear line for any loading failure
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"teacher {path}: does not load ({type(e).__name__}: {first[:200]})") from None


def bucket_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None,
                   chunk: int = 50) -> list[np.ndarray]:
    """Length-bucketed batches of row indices.

    With ``rng``: rows are shuffled, cut into chunks of ``chunk * batch_size``, sorted by
    length within each chunk, cut into batches, and the batch order is shuffled — batches
    hold sentences of similar length (little padding) yet differ every epoch. Without
    ``rng`` (evaluation): sorted by length globally, in order.
    """
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    perm = rng.permutation(n)
    batches = []
    span = chunk * batch_size
    for start in range(0, n, span):
        part = perm[start : start + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def _collate(split: TokenizedSplit, idx: np.ndarray, pad_id: int, device: torch.device,
             pad_to: int | None = None) -> dict[str, torch.Tensor]:
    ids, lengths = split.padded(idx, pad_id)
    if pad_to is not None and ids.shape[1] < pad_to:
        ids = np.pad(ids, ((0, 0), (0, pad_to - ids.shape[1])), constant_values=pad_id)
    ids_t = torch.from_numpy(ids)
    mask = (torch.arange(ids_t.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]).long()
    return {"input_ids": ids_t.to(device, non_blocking=True),
            "attention_mask": mask.to(device, non_blocking=True)}


@torch.inference_mode()
def teacher_logits(model, split: TokenizedSplit, pad_id: int, device: torch.device,
                   dtype: torch.dtype | None, batch_size: int = 128, desc: str | None = None,
                   pad_to: int | None = None) -> np.ndarray:
    """Logits (n, num_labels) float32 for every row of ``split``, in row order."""
    model.eval()
    out = np.zeros((len(split), model.config.num_labels), dtype=np.float32)
    batches = bucket_batches(split.lengths, batch_size, None)
    with progress(total=len(split), desc=desc or f"logits {split.name}", unit="sent",
                  disable=desc == "") as bar:
        for idx in batches:
            batch = _collate(split, idx, pad_id, device, pad_to)
            with autocast(device, dtype):
                logits = model(**batch).logits
            out[idx] = logits.float().cpu().numpy()
            bar.update(len(idx))
    return out


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(logits.argmax(1) == labels))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def reliability(logits: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Reliability-diagram bins over confidence in [1/K, 1] and the expected calibration error.

    ECE = sum_b (n_b / n) |acc_b - conf_b| (Guo et al. 2017), confidence = max softmax prob.
    """
    p = _softmax(logits)
    conf = p.max(1)
    correct = (p.argmax(1) == labels).astype(np.float64)
    lo = 1.0 / logits.shape[1]
    edges = np.linspace(lo, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    bc, ba, bn = [], [], []
    ece = 0.0
    for b in range(bins):
        sel = which == b
        n_b = int(sel.sum())
        bn.append(n_b)
        bc.append(float(conf[sel].mean()) if n_b else None)
        ba.append(float(correct[sel].mean()) if n_b else None)
        if n_b:
            ece += n_b / len(conf) * abs(ba[-1] - bc[-1])
    return {"edges": edges.tolist(), "bin_confidence": bc, "bin_accuracy": ba, "bin_count": bn,
            "ece": float(ece)}


def diagnostics(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict:
    """Numbers that test the 'over-confident teacher' explanation, as data for the report."""
    train_p = _softmax(logits["train"])
    conf = train_p.max(1)
    edges = np.linspace(0.5, 1.0, 21)
    counts, _ = np.histogram(conf, bins=edges)
    entropy = []
    for t in TEMPERATURES:
        p = _softmax(logits["train"] / t)
        h = -(p * np.log2(np.clip(p, 1e-12, 1.0))).sum(1)
        entropy.append(float(h.mean()))
    rel = {s: reliability(logits[s], labels[s]) for s in SPLITS}
    return {
        "accuracy": {s: _accuracy(logits[s], labels[s]) for s in SPLITS},
        "confidence_hist": {"split": "train", "edges": edges.tolist(), "counts": counts.tolist(),
                            "median": float(np.median(conf)),
                            "fraction_above_0.99": float(np.mean(conf > 0.99))},
        "reliability": rel["dev"] | {"split": "dev"},
        "ece": {s: rel[s]["ece"] for s in SPLITS},
        "entropy_vs_T": {"T": list(TEMPERATURES), "mean_entropy_bits": entropy,
                         "split": "train"},
        "logit_margin": {s: float(np.median(np.abs(logits[s][:, 1] - logits[s][:, 0])))
                         for s in SPLITS},
    }


def _settings_key(settings: TeacherSettings) -> dict:
    return asdict(settings)


def fine_tune(run_dir: str | os.PathLike, settings: TeacherSettings, *, device: str = "auto",
              force: bool = False) -> dict:
    """Fine-tune the run's teacher, cache logits/embeddings/diagnostics. Returns the manifest.

    A run whose teacher was already made from the same data and settings is left as it is
    (pass ``force`` to retrain). Everything is built in a temp directory and swapped in at
    the end, so a failed or interrupted run leaves the previous teacher untouched.
    """
    run = Run(run_dir)
    dev_ = resolve_device(device)
    # On CPU, 'auto' keeps the teacher in fp32: its accuracy is the study's ceiling.
    auto_cpu = settings.precision == "auto" and dev_.type == "cpu"
    dtype = None if auto_cpu else autocast_dtype(dev_, settings.precision)
    manifest_path = run.teacher_dir / "manifest.json"
    if manifest_path.is_file() and not force:
        try:
            old = run.teacher_manifest
            if old.get("settings") == _settings_key(settings):
                for name in old["files"]:
                    run._verified(name)
                print(f"teacher: {run.teacher_dir} is up to date "
                      f"(dev {old['accuracy']['dev']:.2%}); nothing to do (--force retrains)",
                      file=sys.stderr)
                return old
        except UsageError as e:
            print(f"teacher: existing teacher not reusable ({e}); retraining", file=sys.stderr)

    splits = {s: run.split(s) for s in SPLITS}
    pad_id = run.pad_id
    from data_prep.prepare import load_tokenizer

    tok = load_tokenizer(run.teacher_path)  # saved beside the checkpoint for the students
    torch.manual_seed(settings.seed)
    model = load_teacher_model(run.teacher_path).to(dev_)
    if model.config.vocab_size < int(run.info["tokenizer"]["vocab_size"]):
        raise UsageError(f"teacher {run.teacher_path}: vocabulary smaller than its tokenizer's")
    if settings.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)

    train = splits["train"]
    if settings.max_train_examples is not None and settings.max_train_examples < len(train):
        train = train.subset(stratified_subset(train.labels, settings.max_train_examples,
                                               settings.seed), name="train")
    rng = np.random.default_rng(settings.seed)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    eval_every = max(1, steps_per_epoch // settings.evals_per_epoch)

    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr)
    sched = get_linear_schedule_with_warmup(opt, int(settings.warmup * total_steps), total_steps)
    scaler = torch.amp.GradScaler(dev_.type, enabled=dtype == torch.float16)

    dev_split = splits["dev"]
    best = {"acc": -1.0, "step": -1, "state": None}
    history = []
    t0 = time.perf_counter()
    seen = 0
    step = 0

    eval_seconds = [0.0]

    def evaluate() -> None:
        te = time.perf_counter()
        logits = teacher_logits(model, dev_split, pad_id, dev_, dtype, desc="")
        acc = _accuracy(logits, dev_split.labels)
        history.append({"step": step, "epoch": step / steps_per_epoch, "dev_acc": acc})
        if acc > best["acc"]:
            best.update(acc=acc, step=step,
                        state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        model.train()
        eval_seconds[0] += time.perf_counter() - te

    with progress(total=len(train) * settings.epochs, desc="teacher fine-tune",
                  unit="sent") as bar:
        for epoch in range(settings.epochs):
            model.train()
            running = torch.zeros((), device=dev_)
            for i, idx in enumerate(bucket_batches(train.lengths, settings.batch_size, rng)):
                batch = _collate(train, idx, pad_id, dev_)
                labels = torch.from_numpy(train.labels[idx]).to(dev_, non_blocking=True)
                with autocast(dev_, dtype):
                    loss = model(**batch, labels=labels).loss
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(opt)
                scaler.update()
                sched.step()
                running += loss.detach()
                step += 1
                seen += len(idx)
                bar.update(len(idx))
                if step % eval_every == 0 or i == steps_per_epoch - 1:
                    evaluate()
                    bar.set_postfix(epoch=epoch + 1, loss=f"{running.item() / (i + 1):.3f}",
                                    best_dev=f"{best['acc']:.2%}")
    train_seconds = time.perf_counter() - t0 - eval_seconds[0]
    model.load_state_dict(best["state"])

    t1 = time.perf_counter()
    logits = {s: teacher_logits(model, splits[s], pad_id, dev_, dtype) for s in SPLITS}
    logit_seconds = time.perf_counter() - t1
    labels = {s: splits[s].labels for s in SPLITS}
    diag = diagnostics(logits, labels)
    n_all = sum(len(splits[s]) for s in SPLITS)
    diag["params"] = int(sum(p.numel() for p in model.parameters()))
    diag["infer_sent_per_s"] = n_all / logit_seconds
    diag["device"] = str(dev_)
    diag["train_seconds_per_epoch"] = train_seconds / settings.epochs
    diag["train_sent_per_s"] = seen / train_seconds

    with atomic_dir(run.teacher_dir) as tmp:
        ckpt = tmp / "checkpoint"
        model.save_pretrained(ckpt)
        tok.save_pretrained(ckpt)
        np.savez(tmp / "logits.npz", data_key=np.asarray(run.data_key), **logits)
        emb = model.get_input_embeddings().weight.detach().float().cpu().numpy()
        np.save(tmp / "embeddings.npy", emb)
        write_json(tmp / "diagnostics.json", diag)
        weights = sorted(ckpt.glob("*.safetensors")) or sorted(ckpt.glob("*.bin"))
        manifest = {
            "format": "distill-study-teacher/1",
            "teacher": run.info["teacher"],
            "teacher_path": run.teacher_path,
            "data_key": run.data_key,
            "tokenizer": run.info["tokenizer"]["fingerprint"],
            "checkpoint_sha256": sha256_file(weights[0]) if weights else None,
            "files": {name: sha256_file(tmp / name)
                      for name in ("logits.npz", "embeddings.npy")},
            "settings": _settings_key(settings),
            "train_size": len(train),
            "best_step": best["step"],
            "best_epoch": best["step"] / steps_per_epoch,
            "dev_history": history,
            "accuracy": diag["accuracy"],
            "params": diag["params"],
            "embedding_shape": list(emb.shape),
            "train_seconds": round(train_seconds, 1),
            "train_sent_per_s": seen / train_seconds,
            "logit_seconds": round(logit_seconds, 1),
            "infer_sent_per_s": diag["infer_sent_per_s"],
            "device": str(dev_),
            "precision": str(dtype).replace("torch.", "") if dtype else "fp32",
            "torch_threads": torch.get_num_threads(),
        }
        write_json(tmp / "manifest.json", manifest)
    acc = diag["accuracy"]
    print(f"teacher: dev {acc['dev']:.2%} / test {acc['test']:.2%} / train {acc['train']:.2%}; "
          f"trained {train_seconds / 60:.1f} min at {seen / train_seconds:.0f} sent/s, "
          f"logits {logit_seconds:.0f} s at {diag['infer_sent_per_s']:.0f} sent/s -> {run.teacher_dir}",
          file=sys.stderr)
    return manifest


def bench_teacher(run_dir: str | os.PathLike, *, examples: int = 1024, batch_size: int = 32,
                  pad_to: int = 64, device: str = "auto", precision: str = "fp32") -> dict:
    """Teacher training and logit-caching throughput: length-bucketed vs padded to ``pad_to``.

    Trains a fresh copy of the pre-trained teacher for ``examples`` train sentences each way
    (same rows, same optimiser) and caches logits for them each way; returns sentences/s and
    the ratios. Nothing is written.
    """
    run = Run(run_dir)
    dev_ = resolve_device(device)
    dtype = autocast_dtype(dev_, precision)
    train = run.split("train")
    idx = stratified_subset(train.labels, min(examples, len(train)), 0)
    part = train.subset(idx)
    out: dict[str, float] = {"examples": len(part), "batch_size": batch_size, "pad_to": pad_to,
                             "threads": torch.get_num_threads(), "device": str(dev_)}
    for mode, pad in (("bucketed", None), ("padded", pad_to)):
        torch.manual_seed(0)
        model = load_teacher_model(run.teacher_path).to(dev_)
        model.get_input_embeddings().weight.requires_grad_(False)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5)
        rng = np.random.default_rng(0)
        model.train()
        t0 = time.perf_counter()
        if pad is None:
            batches = bucket_batches(part.lengths, batch_size, rng)
        else:  # the original loop: random batches, every one padded to a fixed length
            perm = rng.permutation(len(part))
            batches = [perm[i : i + batch_size] for i in range(0, len(part), batch_size)]
        for b in progress(batches, desc=f"train {mode}"):
            batch = _collate(part, b, run.pad_id, dev_, pad)
            labels = torch.from_numpy(part.labels[b]).to(dev_)
            with autocast(dev_, dtype):
                loss = model(**batch, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if dev_.type == "cuda":
            torch.cuda.synchronize(dev_)
        out[f"train_{mode}_sent_per_s"] = len(part) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        teacher_logits(model, part, run.pad_id, dev_, dtype, desc=f"logits {mode}", pad_to=pad)
        out[f"infer_{mode}_sent_per_s"] = len(part) / (time.perf_counter() - t0)
        del model, opt
    out["train_ratio"] = out["train_bucketed_sent_per_s"] / out["train_padded_sent_per_s"]
    out["infer_ratio"] = out["infer_bucketed_sent_per_s"] / out["infer_padded_sent_per_s"]
    return out
