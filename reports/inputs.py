"""What a report reads: a snapshot of an Optuna study plus the run directory's teacher artifacts.

Everything optional (teacher diagnostics, teacher test logits, test labels, exported students)
may be missing; the analysis then marks the section or cell "not available" instead of
failing. Only the study itself is required.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from study.errors import ArtifactError, UsageError

__all__ = [
    "ReportInputs",
    "open_storage",
    "load_study",
    "load_inputs",
    "inputs_from_study",
    "default_storage_url",
    "ARMS",
    "quiet_optuna",
]

ARMS = ("distill", "baseline")
_STUDENT_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin", ".ckpt")


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence Optuna's INFO lines (e.g. for the report's in-memory copies), then restore."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


@dataclass(frozen=True, eq=False)
class ReportInputs:
    """A frozen snapshot of everything the analysis reads.

    Attributes:
        study_name: the study's name.
        directions: the study's optimisation directions (two for the ``both`` objective).
        study_attrs: the study's user attributes (``objective``, ``epochs``,
            ``max_train_examples``, ``dataset``, ``teacher``, ``test_size``, ...).
        trials: every trial at snapshot time, all states (a running study keeps running).
        teacher_diagnostics: ``DIR/teacher/diagnostics.json`` or None.
        teacher_test_logits: ``(n, 2)`` teacher logits on the test split, or None.
        test_labels: ``(n,)`` gold test labels, or None.
        teacher_checkpoint_bytes: size of the teacher's weight files on disk, or None.
        student_files: exported student files found for this study, keyed by
            ``(trial_number, arm)`` -> path.
        run_dir: the run directory, or None when built from a study alone.
    """

    study_name: str
    directions: tuple[optuna.study.StudyDirection, ...]
    study_attrs: dict
    trials: tuple[FrozenTrial, ...]
    teacher_diagnostics: dict | None = None
    teacher_test_logits: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    teacher_checkpoint_bytes: int | None = None
    student_files: dict[tuple[int, str], Path] = field(default_factory=dict)
    run_dir: Path | None = None

    @property
    def is_multi_objective(self) -> bool:
        return len(self.directions) > 1


def default_storage_url(run_dir: str | Path) -> str:
    """``sqlite:///DIR/studies.db``, the storage the ``study`` command uses by default."""
    return f"sqlite:///{Path(run_dir).resolve() / 'studies.db'}"


def open_storage(storage_url: str) -> optuna.storages.BaseStorage | str:
    """Open a storage for reading without creating anything.

    Optuna creates an empty SQLite file (or journal) when asked to open a missing one, which a
    report must never do: a missing file is a :class:`UsageError`. A URL without ``://`` is
    taken as an Optuna journal file.
    """
    if storage_url.startswith("sqlite:///"):
        path = Path(storage_url[len("sqlite:///") :])
        if not path.is_file():
            raise UsageError(f"no study storage at {path} (pass --storage URL?)")
        return storage_url
    if "://" not in storage_url:
        path = Path(storage_url)
        if not path.is_file():
            raise UsageError(f"no journal file at {path}")
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(path)))
    return storage_url


def load_study(storage_url: str, study_name: str) -> optuna.Study:
    """Load ``study_name`` from ``storage_url``; an unknown name lists the names that exist."""
    storage = open_storage(storage_url)
    try:
        names = optuna.study.get_all_study_names(storage=storage)
    except Exception as exc:  # a bad URL or unreachable database: one line for the user
        raise UsageError(f"cannot open storage {storage_url}: {exc}") from exc
    if study_name not in names:
        known = ", ".join(sorted(names)) if names else "none"
        raise UsageError(f"no study named {study_name!r} in {storage_url} (studies: {known})")
    return optuna.load_study(study_name=study_name, storage=storage)


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc


def _read_npz_array(path: Path, key: str) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return np.asarray(arrays[key]) if key in arrays.files else None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} cannot be read: {exc}") from exc


def _checkpoint_bytes(checkpoint: Path) -> int | None:
    if not checkpoint.is_dir():
        return None
    weights = [
        p
        for p in checkpoint.iterdir()
        if p.is_file() and p.suffix in _STUDENT_SUFFIXES and "optimizer" not in p.name
    ]
    return sum(p.stat().st_size for p in weights) if weights else None


def _find_student_files(run_dir: Path, study_name: str) -> dict[tuple[int, str], Path]:
    """Exported students named ``DIR/students/<study>/trial<N>-<arm>.<ext>`` (see module doc)."""
    folder = run_dir / "students" / study_name
    found: dict[tuple[int, str], Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and path.suffix in _STUDENT_SUFFIXES):
            continue
        stem = path.stem
        if not stem.startswith("trial") or "-" not in stem:
            continue
        number, _, arm = stem[len("trial") :].partition("-")
        if number.isdigit() and arm in ARMS:
            found[(int(number), arm)] = path
    return found


def inputs_from_study(
    study: optuna.Study,
    *,
    teacher_diagnostics: dict | None = None,
    teacher_test_logits: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
    teacher_checkpoint_bytes: int | None = None,
    student_files: dict[tuple[int, str], Path] | None = None,
    run_dir: Path | None = None,
) -> ReportInputs:
    """Snapshot a loaded study (any storage) together with optional teacher artifacts."""
    if (
        teacher_test_logits is not None
        and test_labels is not None
        and len(teacher_test_logits) != len(test_labels)
    ):
        raise ArtifactError(
            f"teacher test logits ({len(teacher_test_logits)} rows) and test labels "
            f"({len(test_labels)}) disagree"
        )
    return ReportInputs(
        study_name=study.study_name,
        directions=tuple(study.directions),
        study_attrs=dict(study.user_attrs),
        trials=tuple(study.get_trials(deepcopy=False)),
        teacher_diagnostics=teacher_diagnostics,
        teacher_test_logits=None
        if teacher_test_logits is None
        else np.asarray(teacher_test_logits),
        test_labels=None if test_labels is None else np.asarray(test_labels).astype(np.int64),
        teacher_checkpoint_bytes=teacher_checkpoint_bytes,
        student_files=dict(student_files or {}),
        run_dir=run_dir,
    )


def _test_labels(run: Path) -> np.ndarray | None:
    """Gold test labels from the run's tokenized test split (verified against its data key)."""
    if not (run / "run.json").is_file():
        return None
    from study.run import Run

    return Run(run).split("test").labels


def load_inputs(run_dir: str | Path, storage_url: str | None, study_name: str) -> ReportInputs:
    """Load the study and whatever teacher artifacts the run directory holds.

    Args:
        run_dir: the run directory (``--run DIR``).
        storage_url: Optuna storage; default ``sqlite:///DIR/studies.db``.
        study_name: the study's name.

    Raises:
        UsageError: missing run dir or storage, unknown study name.
        ArtifactError: an artifact exists but cannot be read.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise UsageError(f"run directory {run} does not exist")
    study = load_study(storage_url or default_storage_url(run), study_name)
    return inputs_from_study(
        study,
        teacher_diagnostics=_read_json(run / "teacher" / "diagnostics.json"),
        teacher_test_logits=_read_npz_array(run / "teacher" / "logits.npz", "test"),
        test_labels=_test_labels(run),
        teacher_checkpoint_bytes=_checkpoint_bytes(run / "teacher" / "checkpoint"),
        student_files=_find_student_files(run, study_name),
        run_dir=run,
    )
