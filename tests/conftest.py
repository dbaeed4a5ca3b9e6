"""Shared fixtures: a tiny WordPiece vocab, a tiny random BERT teacher, tiny TSVs, a tiny run.

Everything is built inside the tests (no downloads): the teacher is a random ``BertConfig``
model with a 1-layer, 16-wide encoder, and the data are synthetic sentences whose label is
decided by their sentiment words, so that both teacher and students can learn them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

# Two cores are shared by pytest and the worker processes some tests start: one thread each
# avoids OpenMP oversubscription, which slows tiny models by an order of magnitude.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SST2_DIR = Path(os.environ.get("DISTILL_STUDY_SST2_DIR", REPO.parent / "shared" / "data" / "sst2"))

POSITIVE = ["good", "great", "fine", "nice", "love", "best", "fun", "superb", "moving", "witty"]
NEGATIVE = ["bad", "awful", "poor", "boring", "worst", "hate", "dull", "flat", "tedious", "weak"]
NEUTRAL = ["movie", "film", "the", "a", "is", "was", "it", "this", "and", "plot", "acting",
           "story", "of", "in", "with", "director", "scenes", "cast", "script", "very"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIAL + POSITIVE + NEGATIVE + NEUTRAL + ["##s", "##ly", "##ing", "!", ".", ","]


def synthetic_rows(n: int, seed: int) -> list[tuple[str, int]]:
    """Sentences of 3-14 words; label 1 iff they hold more positive than negative words."""
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        length = int(rng.integers(3, 15))
        k_pos, k_neg = rng.integers(0, 3, size=2)
        if k_pos == k_neg:
            continue
        words = list(rng.choice(NEUTRAL, size=length))
        words += list(rng.choice(POSITIVE, size=k_pos)) + list(rng.choice(NEGATIVE, size=k_neg))
        rng.shuffle(words)
        rows.append((" ".join(words), int(k_pos > k_neg)))
    return rows


def write_tsv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("sentence\tlabel\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")
    return path


def build_tiny_teacher(directory: Path, seed: int = 0, vocab: list[str] | None = None) -> Path:
    """A random 1-layer BERT (hidden 16) with its WordPiece tokenizer, saved to ``directory``."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = vocab or VOCAB
    directory.mkdir(parents=True, exist_ok=True)
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    tok.save_pretrained(directory)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                     num_labels=2)
    BertForSequenceClassification(cfg).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    return build_tiny_teacher(tmp_path_factory.mktemp("teacher") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data") / "sst2-tiny"
    write_tsv(d / "train.tsv", synthetic_rows(400, seed=1))
    write_tsv(d / "dev.tsv", synthetic_rows(120, seed=2))
    return d


def make_run(path: Path, data: Path, teacher: Path, *, epochs: int = 6) -> Path:
    """prepare + teacher on the tiny data (a few seconds on one core)."""
    from data_prep.prepare import prepare
    from study.teacher import TeacherSettings, fine_tune

    prepare(path, "sst2", data_dir=str(data), teacher=str(teacher))
    fine_tune(path, TeacherSettings(epochs=epochs, lr=3e-3, batch_size=16, evals_per_epoch=1,
                                    freeze_embeddings=False), device="cpu")
    return path


@pytest.fixture(scope="session")
def tiny_run_master(tmp_path_factory, tiny_data, tiny_teacher) -> Path:
    return make_run(tmp_path_factory.mktemp("runs") / "tiny", tiny_data, tiny_teacher)


@pytest.fixture
def tiny_run(tmp_path, tiny_run_master) -> Path:
    """A private copy of a prepared tiny run with a fine-tuned teacher and cached logits."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run_master, dst)
    return dst


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    if not (SST2_DIR / "train.tsv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have GLUE SST-2 at {SST2_DIR}")
        pytest.skip(f"GLUE SST-2 not found at {SST2_DIR} (set DISTILL_STUDY_SST2_DIR)")
    return SST2_DIR
