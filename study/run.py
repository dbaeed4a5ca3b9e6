"""The run directory: one dataset split, one teacher and its cached logits, shared by studies.

Layout (see docs/ARCHITECTURE.md)::

    DIR/run.json                   what the run was made for, and the current data key
    DIR/data/<key>/<split>.npz     tokenized splits (TokenizedSplit arrays + key)
    DIR/teacher/                   checkpoint/, logits.npz, embeddings.npy, manifest.json,
                                   diagnostics.json
    DIR/studies.db                 default Optuna storage

Everything expensive is keyed by a hash of its inputs' contents and verified when read; a
mismatch raises :class:`study.errors.ArtifactError` naming the problem and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from data_prep.tokenized import TokenizedSplit
from study.errors import ArtifactError, UsageError

__all__ = ["Run", "atomic_write", "atomic_dir", "sha256_file", "sha256_json", "SPLITS"]

SPLITS = ("train", "dev", "test")
RUN_FORMAT = "distill-study-run/1"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temp file beside ``path``; on success fsync and ``os.replace`` it into place.

    On an exception the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temp name; on success swap it in for ``path``.

    The previous ``path`` (if any) survives a failure untouched, and is removed only after
    the new one is in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class Run:
    """An existing run directory, opened read-only.

    Args:
        path: the directory given as ``--run``.

    Raises:
        UsageError: the directory or its ``run.json`` does not exist (run ``prepare`` first).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UsageError(f"--run {self.path}: directory not found (run 'distill-study prepare' first)")
        if not self.info_path.is_file():
            raise UsageError(f"--run {self.path}: no run.json (run 'distill-study prepare' first)")

    # -- paths --------------------------------------------------------------------------
    @property
    def info_path(self) -> Path:
        return self.path / "run.json"

    @property
    def teacher_dir(self) -> Path:
        return self.path / "teacher"

    @property
    def checkpoint_dir(self) -> Path:
        return self.teacher_dir / "checkpoint"

    @property
    def data_dir(self) -> Path:
        return self.path / "data" / self.data_key[:16]

    @property
    def default_storage(self) -> str:
        return f"sqlite:///{(self.path / 'studies.db').resolve()}"

    # -- run.json -----------------------------------------------------------------------
    @cached_property
    def info(self) -> dict:
        try:
            info = json.loads(self.info_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ArtifactError(f"{self.info_path}: unreadable ({e})") from None
        if info.get("format") != RUN_FORMAT:
            raise ArtifactError(f"{self.info_path}: not a distill-study run (format {info.get('format')!r})")
        return info

    @property
    def data_key(self) -> str:
        return self.info["data_key"]

    @property
    def dataset(self) -> str:
        return self.info["dataset"]

    @property
    def teacher_path(self) -> str:
        """Where the *pre-trained* teacher loads from (hub id or directory).

        The embedded default is resolved again on every use, so a run directory survives a
        re-created virtual environment.
        """
        from data_prep.prepare import DEFAULT_TEACHER, resolve_teacher

        if self.info["teacher"] == DEFAULT_TEACHER:
            return resolve_teacher(DEFAULT_TEACHER)[1]
        return self.info["teacher_path"]

    @property
    def pad_id(self) -> int:
        return int(self.info["pad_id"])

    # -- data ---------------------------------------------------------------------------
    def split(self, name: str) -> TokenizedSplit:
        """A tokenized split, verified against the run's data key."""
        f = self.data_dir / f"{name}.npz"
        if not f.is_file():
            raise ArtifactError(f"{f}: missing tokenized split {name!r} (run 'distill-study prepare' again)")
        try:
            with np.load(f, allow_pickle=False) as z:
                key = str(z["key"])
                arrays = {k: z[k] for k in ("ids", "offsets", "labels", "texts")}
        except Exception as e:  # noqa: BLE001 - truncated/corrupt npz in many shapes
            raise ArtifactError(f"{f}: corrupt tokenized split ({type(e).__name__}); run 'distill-study prepare' again") from None
        if key != self.data_key:
            raise ArtifactError(f"{f}: made for other data (key {key[:12]} != {self.data_key[:12]}); run 'distill-study prepare' again")
        try:
            return TokenizedSplit.from_arrays(name, arrays)
        except ValueError as e:
            raise ArtifactError(f"{f}: inconsistent arrays ({e})") from None

    def tokenizer(self):
        """The teacher's tokenizer (from the fine-tuned checkpoint when it exists)."""
        from transformers import AutoTokenizer

        src = self.checkpoint_dir if (self.checkpoint_dir / "config.json").is_file() else self.teacher_path
        return AutoTokenizer.from_pretrained(str(src))

    # -- teacher artifacts --------------------------------------------------------------
    @cached_property
    def teacher_manifest(self) -> dict:
        f = self.teacher_dir / "manifest.json"
        if not f.is_file():
            raise ArtifactError(f"--run {self.path}: no teacher yet (run 'distill-study teacher --run {self.path}')")
        try:
            manifest = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ArtifactError(f"{f}: unreadable ({e})") from None
        if manifest.get("data_key") != self.data_key:
            raise ArtifactError(
                f"{self.teacher_dir}: teacher was made for other data (key "
                f"{str(manifest.get('data_key'))[:12]} != {self.data_key[:12]}); run 'distill-study teacher' again"
            )
        return manifest

    @property
    def teacher_key(self) -> str:
        """Hash of the fine-tuned teacher checkpoint that produced the cached logits."""
        return self.teacher_manifest["checkpoint_sha256"]

    def _verified(self, name: str) -> Path:
        f = self.teacher_dir / name
        expected = self.teacher_manifest["files"].get(name)
        if not f.is_file():
            raise ArtifactError(f"{f}: missing (run 'distill-study teacher' again)")
        if expected is None or sha256_file(f) != expected:
            raise ArtifactError(f"{f}: content does not match the teacher manifest (truncated or replaced); run 'distill-study teacher' again")
        return f

    @cached_property
    def _logits(self) -> dict[str, np.ndarray]:
        f = self._verified("logits.npz")
        with np.load(f, allow_pickle=False) as z:
            out = {k: z[k].astype(np.float32) for k in z.files if k in SPLITS}
        for name, arr in out.items():
            n = self.info["sizes"][name]
            if arr.shape != (n, 2):
                raise ArtifactError(f"{f}: {name} logits have shape {arr.shape}, expected ({n}, 2)")
        return out

    def verify(self) -> None:
        """Read and check every artifact a study trains on: the tokenized splits, the teacher's
        logits and embeddings. Raises :class:`ArtifactError` naming the first bad one, so a
        command can refuse before it writes anything (issue 6)."""
        for name in SPLITS:
            self.split(name)
        self._logits  # noqa: B018 - verified against the manifest and cached for pair_data
        self._verified("embeddings.npy")

    def logits(self, split: str) -> np.ndarray:
        """Raw teacher logits (n, 2) for ``split``; temperature is applied by the losses."""
        return self._logits[split]

    def embeddings(self):
        """The teacher's word-embedding matrix (V, E) as a float32 torch tensor."""
        import torch

        f = self._verified("embeddings.npy")
        return torch.from_numpy(np.load(f, allow_pickle=False).astype(np.float32))

    def diagnostics(self) -> dict:
        f = self.teacher_dir / "diagnostics.json"
        return json.loads(f.read_text()) if f.is_file() else {}

    def pair_data(self, max_train_examples: int | None = None, subset_seed: int = 0, *,
                  with_test: bool = True, with_augmented: bool = True):
        """Everything a paired trial needs, loaded once per worker process.

        Args:
            max_train_examples: a seeded, stratified subset of train of this size (quick
                runs); None for all of train.
            subset_seed: seed of that subset.
        """
        from data_prep.splits import stratified_subset
        from study.train import PairData

        train = self.split("train")
        train_logits = self.logits("train")
        n_full = len(train)
        idx = None
        if max_train_examples is not None and max_train_examples < len(train):
            idx = stratified_subset(train.labels, max_train_examples, subset_seed)
            train, train_logits = train.subset(idx), train_logits[idx]
        augmented = augmented_logits = None
        if with_augmented:
            aug = self.augmented()
            if aug is not None:
                augmented, augmented_logits = aug
                if idx is not None:  # keep copy-major order: copy c of row i at c * n + i
                    copies = len(augmented) // n_full
                    rows = (np.arange(copies)[:, None] * n_full + idx[None, :]).ravel()
                    augmented, augmented_logits = augmented.subset(rows), augmented_logits[rows]
        return PairData(
            train=train,
            dev=self.split("dev"),
            test=self.split("test") if with_test else None,
            train_logits=train_logits,
            dev_logits=self.logits("dev"),
            embeddings=self.embeddings(),
            pad_id=self.pad_id,
            augmented=augmented,
            augmented_logits=augmented_logits,
        )

    @property
    def augment_factor(self) -> int:
        """How many augmented copies of train the run holds (0 when none were made)."""
        f = self.path / "augment" / "manifest.json"
        if not f.is_file():
            return 0
        return int(json.loads(f.read_text())["factor"])

    @property
    def augment_key(self) -> str | None:
        """Hash of the augmented transfer set (its rows and their teacher logits), or None
        when none was made. A study records it: the same ``augment_factor`` on another set is
        another experiment."""
        f = self.path / "augment" / "manifest.json"
        if not f.is_file():
            return None
        files = json.loads(f.read_text()).get("files", {})
        return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()

    def augmented(self):
        """The teacher-labelled augmented transfer set, or None when none was made."""
        f = self.path / "augment" / "manifest.json"
        if not f.is_file():
            return None
        from data_prep.augment import load_augmented

        return load_augmented(self)
