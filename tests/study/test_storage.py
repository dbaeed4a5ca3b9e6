"""--storage parsing and opening: SQLite (WAL, busy timeout, heartbeat), journal, errors."""

from __future__ import annotations

import socket
import sqlite3
import time

import optuna
import pytest

from study.errors import UsageError
from study.storage import SQLITE_BUSY_TIMEOUT, open_storage, parse_storage


def test_default_is_the_run_directorys_sqlite(tmp_path):
    spec = parse_storage(None, tmp_path)
    assert spec.backend == "sqlite" and spec.url == f"sqlite:///{tmp_path.resolve()}/studies.db"
    assert spec.local_path == tmp_path.resolve() / "studies.db"


@pytest.mark.parametrize(
    ("value", "kind", "backend"),
    [
        ("sqlite:///x.db", "rdb", "sqlite"),
        ("postgresql+psycopg://u:p@localhost:5432/db", "rdb", "postgresql"),
        ("mysql+pymysql://u:p@localhost/db", "rdb", "mysql"),
        ("journal:/tmp/s.journal", "journal", "journal"),
        ("/tmp/study.log", "journal", "journal"),
        ("study.jsonl", "journal", "journal"),
    ],
)
def test_parse_storage_forms(value, kind, backend):
    spec = parse_storage(value)
    assert (spec.kind, spec.backend) == (kind, backend)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("redis://localhost/0", "unknown scheme 'redis'"),
        ("mongodb://x", "unknown scheme"),
        ("studies.db", "not a URL"),
        ("journal:", "needs a path"),
    ],
)
def test_bad_storage_values(value, message):
    with pytest.raises(UsageError, match=message):
        parse_storage(value)


def test_sqlite_storage_uses_wal_busy_timeout_and_heartbeat(tmp_path):
    spec = parse_storage(f"sqlite:///{tmp_path}/s.db")
    storage = open_storage(spec, heartbeat_interval=2, grace_period=5)
    assert storage.get_heartbeat_interval() == 2 and storage.grace_period == 5
    callback = storage.get_heartbeat_stale_trial_callback()
    assert isinstance(callback, optuna.storages.RetryHeartbeatStaleTrialCallback)
    assert storage.engine.dialect.name == "sqlite"
    with sqlite3.connect(tmp_path / "s.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert storage.engine_kwargs["connect_args"]["timeout"] == SQLITE_BUSY_TIMEOUT
    study = optuna.create_study(storage=storage, study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2


def test_read_only_open_never_creates_a_database(tmp_path):
    spec = parse_storage(f"sqlite:///{tmp_path}/missing.db")
    with pytest.raises(UsageError, match="no such file"):
        open_storage(spec, must_exist=True)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(UsageError, match="does not exist"):
        open_storage(parse_storage(f"sqlite:///{tmp_path}/nodir/x.db"))
    assert not (tmp_path / "nodir").exists()


def test_journal_storage(tmp_path):
    storage = open_storage(parse_storage(str(tmp_path / "study.log")))
    assert isinstance(storage, optuna.storages.JournalStorage)
    study = optuna.create_study(storage=storage, study_name="j")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    reopened = optuna.load_study(study_name="j", storage=open_storage(
        parse_storage(f"journal:{tmp_path / 'study.log'}"), must_exist=True))
    assert len(reopened.trials) == 2


def test_unreachable_database_is_a_one_line_usage_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = parse_storage(f"postgresql+psycopg://u:secret@127.0.0.1:{port}/db")
    t0 = time.monotonic()
    with pytest.raises(UsageError) as info:
        open_storage(spec)
    message = str(info.value)
    assert "cannot open the database" in message and "\n" not in message
    assert "secret" not in message  # the password is masked
    assert time.monotonic() - t0 < 15
