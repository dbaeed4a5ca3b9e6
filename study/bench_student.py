"""Student throughput benchmark (issue 3): the fast paired trainer against the original loop.

Three measurements on the same data, in the same process:

1. **fast**: ``train_pair`` for ``epochs`` epochs (exact-length batches, no padding, autocast as
   ``precision`` resolves), training sentences per second per arm, and both arms' dev accuracy;
2. **reference**: the loop the study we reproduce ran — random batches of 64 padded to 64 tokens,
   no packing (the backward RNN reads the padding first), masked attention, fp32, the same model
   size, the same optimiser and schedule, trained as the distill arm (MSE on teacher logits);
   its sentences per second, its dev accuracy, and the ratio fast / reference;
3. **inference**: student vs teacher sentences per second at batch 256 (exact-length batches
   for both) and batch 1, and both models' parameter counts (the original report's "1/3 of the
   size, ~8x faster").

Nothing is written. The figures depend on the machine and its load; run it on a quiet one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from models.losses import mse_loss
from models.student import Student
from study.batching import Buckets, eval_plan
from study.config import TrialConfig
from study.device import autocast, autocast_dtype
from study.progress import progress
from study.train import PairData, train_pair, warmup_cosine

__all__ = ["bench_student", "reference_epochs", "inference_throughput", "format_report"]


def _unpacked_logits(model: Student, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The original forward: the RNNs run over the padding (no packing); attention is masked."""
    g = model.generator(ids.device) if model.training else None
    x = model.embedding_dropout(ids, model.embedding, g)  # (B, 64, E)
    x = model.input_dropout(x, g)
    for i, layer in enumerate(model.layers):
        if i > 0:
            x = model.layer_dropout(x, g)
        x = layer(x, None, g)  # (B, 64, 2H): backward direction starts in the padding
    return model.head(model.attention(x, mask), g)  # (B, K)


def _padded(split, rows: np.ndarray, pad_id: int, pad_to: int, device) -> tuple:
    ids, lengths = split.padded(rows, pad_id)
    width = max(pad_to, ids.shape[1])
    out = np.full((len(rows), width), pad_id, dtype=np.int64)
    out[:, : ids.shape[1]] = ids
    ids_t = torch.from_numpy(out).to(device)
    mask = torch.arange(width, device=device) < torch.from_numpy(lengths).to(device)[:, None]
    return ids_t, mask


def reference_epochs(
    config: TrialConfig,
    data: PairData,
    seed: int = 0,
    *,
    pad_to: int = 64,
    device: torch.device | str = "cpu",
    show_progress: bool = True,
) -> dict:
    """Train one student the original way (padded to ``pad_to``, no packing, fp32).

    Returns:
        ``{"sent_per_s", "train_seconds", "sentences", "dev_acc"}``.
    """
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Student(config.student, data.embeddings.to(device), data.pad_id, seed).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr, betas=(config.beta1, config.beta2),
                           weight_decay=config.weight_decay, foreach=True)  # PyTorch's default
    rng = np.random.default_rng(seed)
    n, bs = len(data.train), config.batch_size
    steps = config.epochs * math.ceil(n / bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(steps, config.warmup))
    teacher = torch.from_numpy(np.asarray(data.train_logits, dtype=np.float32)).to(device)
    seconds, sentences = 0.0, 0
    bar = progress(total=config.epochs * n, unit="sent", unit_scale=True, desc="reference",
                   disable=not show_progress)
    for _ in range(config.epochs):
        model.train()
        order = rng.permutation(n)
        start = time.perf_counter()
        for i in range(0, n, bs):
            rows = order[i : i + bs]
            # collated per batch, as a DataLoader would: part of the loop being measured
            ids, mask = _padded(data.train, rows, data.pad_id, pad_to, device)
            loss = mse_loss(_unpacked_logits(model, ids, mask),
                            teacher[torch.from_numpy(rows).to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, config.clip)
            opt.step()
            sched.step()
            bar.update(len(rows))
        float(loss.item())
        seconds += time.perf_counter() - start
        sentences += n
    bar.close()
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(data.dev), 256):
            rows = np.arange(i, min(i + 256, len(data.dev)))
            ids, mask = _padded(data.dev, rows, data.pad_id, pad_to, device)
            pred = _unpacked_logits(model, ids, mask).argmax(-1).cpu().numpy()
            correct += int((pred == data.dev.labels[rows]).sum())
    return {"sent_per_s": sentences / seconds, "train_seconds": seconds, "sentences": sentences,
            "dev_acc": correct / max(1, len(data.dev))}


def inference_throughput(
    forward: Callable[[torch.Tensor], torch.Tensor],
    buckets: Buckets,
    batch_size: int,
    *,
    max_sentences: int,
    min_seconds: float = 1.0,
    dtype: torch.dtype | None = None,
) -> float:
    """Sentences per second of ``forward`` over exact-length batches of ``buckets``.

    Passes over (at most ``max_sentences`` of) the split until ``min_seconds`` have elapsed.
    """
    device = buckets.device
    plan = eval_plan(buckets, batch_size)
    batches, total = [], 0
    for b, pos in zip(plan.bucket.tolist(), plan.tensors(device), strict=True):
        if total >= max_sentences:
            break
        batches.append(buckets.buckets[b].ids.index_select(0, pos))
        total += len(pos)
    with torch.inference_mode(), autocast(device, dtype):
        forward(batches[0])  # warm-up (oneDNN primitive creation, weight casts)
        done, start = 0, time.perf_counter()
        while True:
            for ids in batches:
                out = forward(ids)
                done += ids.shape[0]
            float(out.float().sum().item())
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                return done / elapsed


def bench_student(
    data: PairData,
    teacher: nn.Module | None = None,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    cell: str = "lstm",
    layers: int = 2,
    hidden: int = 256,
    precision: str = "auto",
    device: torch.device | str = "cpu",
    pad_to: int = 64,
    seed: int = 0,
    reference: bool = True,
    show_progress: bool = True,
) -> dict:
    """Run the three measurements and return their figures as one flat dict.

    Args:
        data: the paired-trial data (a run's ``pair_data``).
        teacher: the fine-tuned teacher (a transformers sequence classifier), or ``None`` to
            skip the teacher's inference figures.
        epochs, batch_size, cell, layers, hidden, precision: the student and its training; the
            remaining architecture and optimiser fields are ``TrialConfig``'s defaults.
        device: where to run.
        pad_to: the reference loop's padded length (its batch size is always 64, its
            precision fp32, as in the study we reproduce).
        seed: the pair's seed.
        reference: also run the reference loop (slow: ~1/6 of the fast rate).
        show_progress: tqdm bars on stderr.
    """
    device = torch.device(device)
    config = TrialConfig(cell=cell, layers=layers, hidden=hidden, epochs=epochs,
                         batch_size=batch_size, precision=precision)
    dtype = autocast_dtype(device, precision)
    result = train_pair(config, data, seed, device=device, progress=show_progress)
    d, b = result.distill, result.baseline
    rate = (d.sentences_seen + b.sentences_seen) / (d.train_seconds + b.train_seconds)
    out: dict = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "autocast": str(dtype).replace("torch.", "") if dtype is not None else "fp32",
        "cell": cell, "layers": layers, "hidden": hidden, "batch_size": batch_size,
        "epochs": epochs, "train_size": len(data.train), "dev_size": len(data.dev),
        "sent_per_s": rate,
        "distill_sent_per_s": d.sent_per_s,
        "baseline_sent_per_s": b.sent_per_s,
        "distill_dev_acc": d.best_dev_acc,
        "baseline_dev_acc": b.best_dev_acc,
        "student_params_total": result.params_total,
        "student_params_trainable": result.params_trainable,
    }
    if reference:
        # the original loop's own settings: batch 64, fp32 (whatever the fast loop uses)
        ref_config = dataclasses.replace(config, batch_size=64, precision="fp32")
        ref = reference_epochs(ref_config, data, seed, pad_to=pad_to, device=device,
                               show_progress=show_progress)
        out.update(reference_sent_per_s=ref["sent_per_s"], reference_dev_acc=ref["dev_acc"],
                   ratio=rate / ref["sent_per_s"], reference_pad_to=pad_to)

    # inference: the trained distill student against the teacher, same batches, same precision
    student = Student(config.student, data.embeddings.to(device), data.pad_id).to(device)
    student.load_state_dict(d.state_dict, strict=False)
    student.eval()
    dev = data.buckets("dev", device)
    for bs, suffix, cap in ((256, "", 4096), (1, "_b1", 200)):
        out[f"student_infer{suffix}_sent_per_s"] = inference_throughput(
            lambda ids: student(ids).logits, dev, bs, max_sentences=cap, dtype=dtype)
    if teacher is not None:
        teacher = teacher.to(device).eval()
        out["teacher_params"] = sum(p.numel() for p in teacher.parameters())
        for bs, suffix, cap in ((256, "", 4096), (1, "_b1", 200)):
            out[f"teacher_infer{suffix}_sent_per_s"] = inference_throughput(
                lambda ids: teacher(input_ids=ids, attention_mask=torch.ones_like(ids)).logits,
                dev, bs, max_sentences=cap, dtype=dtype)
        out["infer_speedup"] = out["student_infer_sent_per_s"] / out["teacher_infer_sent_per_s"]
        out["infer_speedup_b1"] = (out["student_infer_b1_sent_per_s"]
                                   / out["teacher_infer_b1_sent_per_s"])
        out["size_ratio"] = out["student_params_total"] / out["teacher_params"]
    return out


def format_report(r: dict) -> str:
    """The figures as a few human-readable lines."""
    lines = [
        f"student {r['cell']} x{r['layers']} hidden {r['hidden']}/direction, batch "
        f"{r['batch_size']}, {r['epochs']} epoch(s) on {r['train_size']} train rows, "
        f"{r['device']}, {r['threads']} threads, autocast {r['autocast']}",
        f"  fast (exact-length batches): {r['sent_per_s']:.0f} sent/s per arm "
        f"(distill {r['distill_sent_per_s']:.0f}, baseline {r['baseline_sent_per_s']:.0f}); "
        f"dev acc distill {100 * r['distill_dev_acc']:.2f}%, baseline "
        f"{100 * r['baseline_dev_acc']:.2f}%",
    ]
    if "reference_sent_per_s" in r:
        lines.append(
            f"  reference (padded to {r['reference_pad_to']}, no packing, fp32): "
            f"{r['reference_sent_per_s']:.0f} sent/s; dev acc {100 * r['reference_dev_acc']:.2f}%"
            f"  ->  ratio {r['ratio']:.2f}x")
    lines.append(
        f"  student inference: {r['student_infer_sent_per_s']:.0f} sent/s at batch 256, "
        f"{r['student_infer_b1_sent_per_s']:.0f} at batch 1; params "
        f"{r['student_params_total']:,} ({r['student_params_trainable']:,} trainable)")
    if "teacher_params" in r:
        lines.append(
            f"  teacher inference: {r['teacher_infer_sent_per_s']:.0f} sent/s at batch 256, "
            f"{r['teacher_infer_b1_sent_per_s']:.0f} at batch 1; params "
            f"{r['teacher_params']:,}  ->  student {r['infer_speedup']:.2f}x / "
            f"{r['infer_speedup_b1']:.2f}x faster, {r['size_ratio']:.2f}x the size")
    return "\n".join(lines)

