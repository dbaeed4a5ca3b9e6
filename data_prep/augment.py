"""The augmented transfer set of Tang et al. (2019), labelled by the cached teacher.

Tang et al. ("Distilling Task-Specific Knowledge from BERT into Simple Neural Networks",
section 3.3) build a transfer set by applying, to every training sentence, word-level rules:

- masking: each word is replaced by the mask token with probability ``p_mask``;
- POS-guided replacement: each word is replaced by another word of the same part of speech
  with probability ``p_pos``;
- n-gram sampling: with probability ``p_ng`` only a random n-gram (n from 1 to 5) is kept.

The POS rule needs a part-of-speech tagger and its lexicon; no offline source of one is
available from the package registries this project may use, so it is replaced here by the
word-replacement rule of TinyBERT (Jiao et al. 2020): a word that is a single vocabulary entry
is replaced, with probability ``p_swap``, by one of its ``k`` nearest neighbours in the
teacher's own word-embedding space (cosine similarity). Set ``p_swap=0`` for Tang's rules
without it. All rules act on whole words (whitespace tokens of the PTB-tokenized text), never
on word pieces.

Augmented rows have no gold label (-1): only the distill arm trains on them, against the
teacher's logits, which are cached like the training set's.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data_prep.tokenized import TokenizedSplit
from study.errors import ArtifactError, UsageError
from study.progress import progress

__all__ = ["AugmentSettings", "augment_sentence", "build_augmented", "load_augmented",
           "embedding_neighbours"]


@dataclass(frozen=True)
class AugmentSettings:
    """Rules and probabilities (Tang et al. 2019 used p_mask = p_pos = 0.1, p_ng = 0.25)."""

    factor: int = 2
    seed: int = 0
    p_mask: float = 0.1
    p_swap: float = 0.1
    p_ng: float = 0.25
    neighbours: int = 10
    max_ngram: int = 5

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise UsageError(f"--factor must be >= 1, got {self.factor}")
        for name in ("p_mask", "p_swap", "p_ng"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise UsageError(f"--{name.replace('_', '-')} must be in [0, 1], got {v}")
        if self.p_mask + self.p_swap > 1.0:
            raise UsageError("--p-mask + --p-swap must be <= 1")
        if self.neighbours < 1 or self.max_ngram < 1:
            raise UsageError("--neighbours and --max-ngram must be >= 1")


def embedding_neighbours(embeddings: np.ndarray, candidates: np.ndarray, k: int,
                         chunk: int = 2048) -> dict[int, np.ndarray]:
    """For each candidate id, its ``k`` nearest other candidates by cosine similarity."""
    e = embeddings[candidates].astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-8
    out: dict[int, np.ndarray] = {}
    for start in range(0, len(candidates), chunk):
        sims = e[start : start + chunk] @ e.T
        for r in range(sims.shape[0]):
            sims[r, start + r] = -np.inf  # never the word itself
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        for r, row in enumerate(top):
            out[int(candidates[start + r])] = candidates[row]
    return out


def augment_sentence(words: list[str], rng: np.random.Generator, s: AugmentSettings,
                     mask_token: str, swap) -> str:
    """One application of the rules to a whitespace-tokenized sentence.

    Args:
        swap: ``swap(word, rng) -> str | None``, a replacement word or None when the word has
            no neighbour list.
    """
    out = []
    for w in words:
        u = rng.random()
        if u < s.p_mask:
            out.append(mask_token)
        elif u < s.p_mask + s.p_swap:
            out.append(swap(w, rng) or w)
        else:
            out.append(w)
    if len(out) > 1 and rng.random() < s.p_ng:
        n = int(rng.integers(1, min(s.max_ngram, len(out)) + 1))
        start = int(rng.integers(0, len(out) - n + 1))
        out = out[start : start + n]
    return " ".join(out)


def _neighbour_swapper(tok, embeddings: np.ndarray, texts, k: int):
    """A swap function over whole words that are single vocabulary entries of the corpus."""
    vocab = tok.get_vocab()
    words = {w for t in texts for w in t.split()}
    cand_words = sorted(w for w in words if w in vocab and w.isalpha() and len(w) > 1)
    if len(cand_words) <= k:
        return lambda w, rng: None
    ids = np.asarray([vocab[w] for w in cand_words])
    nn = embedding_neighbours(embeddings, ids, k)
    inv = {vocab[w]: w for w in cand_words}

    def swap(word: str, rng: np.random.Generator) -> str | None:
        i = vocab.get(word)
        if i is None or i not in nn:
            return None
        return inv[int(rng.choice(nn[i]))]

    return swap


def build_augmented(run_dir: str | os.PathLike, settings: AugmentSettings, *,
                    device: str = "auto", batch_size: int = 256) -> dict:
    """Write ``factor`` augmented copies of train and their teacher logits under DIR/augment/.

    Rows are stored copy-major: copy ``c`` of train row ``i`` is row ``c * n_train + i``, so
    the first ``k * n_train`` rows are an augment factor of ``k``.
    """
    import torch

    from study.device import resolve_device
    from study.run import Run, atomic_dir, sha256_file, write_json
    from study.teacher import load_teacher_model, teacher_logits

    run = Run(run_dir)
    teacher_key = run.teacher_key  # refuses a missing or stale teacher
    dev_ = resolve_device(device)
    tok = run.tokenizer()
    if tok.mask_token is None:
        raise UsageError("the teacher's tokenizer has no mask token; augmentation needs one")
    train = run.split("train")
    texts = [str(t) for t in train.texts]
    rng = np.random.default_rng(settings.seed)
    swap = (_neighbour_swapper(tok, run.embeddings().numpy(), texts, settings.neighbours)
            if settings.p_swap > 0 else (lambda w, r: None))
    t0 = time.perf_counter()
    aug_texts: list[str] = []
    with progress(total=settings.factor * len(texts), desc="augment", unit="sent") as bar:
        for _copy in range(settings.factor):
            for t in texts:
                aug_texts.append(augment_sentence(t.split(), rng, settings, tok.mask_token, swap))
                bar.update()
    from data_prep.prepare import tokenize_texts

    ids, offsets = tokenize_texts(tok, aug_texts, int(run.info["max_length"]), "augmented")
    aug = TokenizedSplit("augmented", ids, offsets, np.full(len(aug_texts), -1, dtype=np.int64),
                         np.asarray(aug_texts, dtype=np.str_))
    model = load_teacher_model(run.checkpoint_dir).to(dev_)
    dtype = None if dev_.type == "cpu" else (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    t1 = time.perf_counter()
    logits = teacher_logits(model, aug, run.pad_id, dev_, dtype, batch_size=batch_size,
                            desc="logits augmented")
    logit_seconds = time.perf_counter() - t1
    with atomic_dir(run.path / "augment") as tmp:
        np.savez(tmp / "augmented.npz", key=np.asarray(run.data_key), **aug.to_arrays())
        np.savez(tmp / "logits.npz", augmented=logits)
        manifest = {
            "format": "distill-study-augment/1",
            "settings": asdict(settings),
            "factor": settings.factor,
            "data_key": run.data_key,
            "teacher_key": teacher_key,
            "n_train": len(train),
            "rows": len(aug),
            "files": {n: sha256_file(tmp / n) for n in ("augmented.npz", "logits.npz")},
            "seconds": round(time.perf_counter() - t0, 1),
            "logit_sent_per_s": len(aug) / logit_seconds,
            "swap_rule": "embedding-neighbour (TinyBERT) in place of Tang et al.'s POS rule"
                         if settings.p_swap > 0 else "none",
            "unchanged_fraction": float(np.mean([a == b for a, b in
                                                 zip(aug_texts, texts * settings.factor, strict=True)])),
        }
        write_json(tmp / "manifest.json", manifest)
    print(f"augment: {len(aug):,} rows ({settings.factor} x {len(train):,}) labelled by the "
          f"teacher in {manifest['seconds']:.0f} s -> {run.path / 'augment'}", file=sys.stderr)
    return manifest


def load_augmented(run) -> tuple[TokenizedSplit, np.ndarray]:
    """The augmented split and its teacher logits, verified against the run and its teacher."""
    from study.run import sha256_file

    d = Path(run.path) / "augment"
    try:
        manifest = json.loads((d / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{d / 'manifest.json'}: unreadable ({e})") from None
    if manifest.get("data_key") != run.data_key or manifest.get("teacher_key") != run.teacher_key:
        raise ArtifactError(f"{d}: augmented set was made for another teacher or data; run 'distill-study augment' again")
    for name, digest in manifest["files"].items():
        f = d / name
        if not f.is_file() or sha256_file(f) != digest:
            raise ArtifactError(f"{f}: content does not match the augment manifest; run 'distill-study augment' again")
    with np.load(d / "augmented.npz", allow_pickle=False) as z:
        split = TokenizedSplit.from_arrays("augmented", z)
    with np.load(d / "logits.npz", allow_pickle=False) as z:
        logits = z["augmented"].astype(np.float32)
    if logits.shape != (len(split), 2) or len(split) != manifest["rows"]:
        raise ArtifactError(f"{d}: augmented rows and logits disagree")
    return split, logits
