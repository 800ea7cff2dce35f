"""The run store: one SQLite file (WAL) per run directory, the source of truth.

Every finished generation, rewrite or verdict is committed the moment it arrives, keyed by a
content key, so a killed run restarted does only what is missing and ends with exactly the
rows of an uninterrupted one (``INSERT OR REPLACE`` on the key: nothing duplicated).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .errors import WarmbenchError
from .layout import STORE_SQLITE, RunLayout
from .records import ChatRequest, Completion, SamplingParams, Usage, stable_hash

# Ordered schema migrations, as simonw/llm keeps its log database: migration i (1-based)
# brings a store from schema i-1 to schema i, and ``PRAGMA user_version`` records how many
# have run. Never edit a released migration: append a new one. Stores written before the
# schema was versioned have user_version 0 and today's tables; migration 1 is written with
# IF NOT EXISTS so it is a no-op on them and they are simply stamped.
_M001_INITIAL = (
    """CREATE TABLE IF NOT EXISTS completions (
        key TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        tag TEXT,
        sample_index INTEGER NOT NULL,
        request TEXT NOT NULL,
        params TEXT NOT NULL,
        text TEXT,
        finish_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd REAL,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        created REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS completions_kind ON completions(kind)",
    """CREATE TABLE IF NOT EXISTS records (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        data TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (kind, key)
    )""",
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
)

# Cached input tokens of an API request (``usage.prompt_tokens_details.cached_tokens``): part
# of prompt_tokens, billed at their own rate (warmbench.prices). NULL on older rows.
_M002_CACHED_TOKENS = (
    "ALTER TABLE completions ADD COLUMN cached_tokens INTEGER",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _M001_INITIAL,
    _M002_CACHED_TOKENS,
)


def schema_version() -> int:
    """The schema this warmbench writes: the number of migrations it knows."""
    return len(MIGRATIONS)


def migrate(db: sqlite3.Connection, path: Path | str = STORE_SQLITE) -> int:
    """Bring an open store up to :func:`schema_version`; return the version it had.

    Runs inside one IMMEDIATE transaction, so two processes opening an old store at once
    migrate it once (the second sees the new version). A store from a newer warmbench is
    refused with a clear error rather than written with keys it may not understand.
    """
    target = schema_version()
    db.execute("BEGIN IMMEDIATE")
    try:
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found > target:
            raise WarmbenchError(
                f"{path}: run store schema {found} was written by a newer warmbench "
                f"(this one reads up to schema {target}); upgrade warmbench to open it")
        for statements in MIGRATIONS[found:]:
            for sql in statements:
                db.execute(sql)
        if found != target:
            # PRAGMA takes no parameters; target is an int we computed.
            db.execute(f"PRAGMA user_version = {int(target)}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found


def completion_key(model_identity: str, request: ChatRequest, params: SamplingParams,
                   sample_index: int = 0) -> str:
    """Content key of one generation: model (with adapter hash), params, messages, sample."""
    # exclude_none: an optional parameter left unset (``choices``) keeps the keys of runs made
    # before it existed.
    return stable_hash(
        [model_identity, params.model_dump(exclude_none=True), request.as_dicts(), sample_index],
        n=32,
    )


# ``export`` name of the raw generation table (the other kinds are record kinds).
COMPLETIONS = "completions"


class RunStore:
    """Thread-safe handle on a run directory's SQLite store."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = RunLayout(self.run_dir).store
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process kills in WAL mode (only an OS crash can lose
        # the last transactions), and much faster than FULL.
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            migrate(self._db, self.path)
        except BaseException:
            self._db.close()
            raise

    # -- completions ---------------------------------------------------------------
    def get_completion(self, key: str) -> Completion | None:
        """A stored successful completion, or None (missing or failed: to be retried)."""
        with self._lock:
            row = self._db.execute(
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, cost_usd, error, "
                "cached_tokens FROM completions WHERE key=?", (key,)
            ).fetchone()
        if row is None or row[5] is not None:
            return None
        return Completion(text=row[0] or "", finish_reason=row[1],
                          usage=Usage(prompt_tokens=row[2] or 0, completion_tokens=row[3] or 0,
                                      cost_usd=row[4] or 0.0, cached_tokens=row[6] or 0))

    def done_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of these keys already hold a successful completion."""
        keys = list(keys)
        found: set[str] = set()
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                q = ",".join("?" * len(chunk))
                found.update(r[0] for r in self._db.execute(
                    f"SELECT key FROM completions WHERE error IS NULL AND key IN ({q})", chunk))
        return found

    def put_completion(self, key: str, *, model: str, kind: str, request: ChatRequest,
                       params: SamplingParams, sample_index: int, completion: Completion) -> None:
        u = completion.usage
        with self._lock:
            prev = self._db.execute("SELECT attempts FROM completions WHERE key=?", (key,)).fetchone()
            attempts = (prev[0] + 1) if prev else 1
            self._db.execute(
                "INSERT OR REPLACE INTO completions (key, model, kind, tag, sample_index, request, "
                "params, text, finish_reason, prompt_tokens, completion_tokens, cost_usd, error, "
                "attempts, created, cached_tokens) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, model, kind, request.tag, sample_index,
                 json.dumps(request.as_dicts(), ensure_ascii=False),
                 params.model_dump_json(), completion.text if completion.ok else None,
                 completion.finish_reason, u.prompt_tokens, u.completion_tokens, u.cost_usd,
                 completion.error, attempts, time.time(), u.cached_tokens),
            )
            self._db.commit()

    def completion_rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM completions" + (" WHERE kind=?" if kind else "") + " ORDER BY rowid",
                (kind,) if kind else (),
            )
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def usage_totals(self) -> dict[str, float]:
        with self._lock:
            r = self._db.execute(
                "SELECT COUNT(*), SUM(error IS NOT NULL), COALESCE(SUM(prompt_tokens),0), "
                "COALESCE(SUM(completion_tokens),0), COALESCE(SUM(cost_usd),0), "
                "COALESCE(SUM(cached_tokens),0) FROM completions"
            ).fetchone()
        return {"completions": r[0], "failed": r[1] or 0, "prompt_tokens": r[2],
                "completion_tokens": r[3], "cost_usd": r[4], "cached_tokens": r[5]}

    # -- generic records -----------------------------------------------------------
    def put(self, kind: str, key: str, data: BaseModel | dict[str, Any]) -> None:
        payload = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(
            data, ensure_ascii=False, default=str)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO records VALUES (?,?,?,?)",
                             (kind, key, payload, time.time()))
            self._db.commit()

    def put_many(self, kind: str, items: Iterable[tuple[str, BaseModel | dict[str, Any]]]) -> int:
        rows = [(kind, k, d.model_dump_json() if isinstance(d, BaseModel)
                 else json.dumps(d, ensure_ascii=False, default=str), time.time()) for k, d in items]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?,?,?,?)", rows)
            self._db.commit()
        return len(rows)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM records WHERE kind=? AND key=?",
                                   (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def has(self, kind: str, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM records WHERE kind=? AND key=?",
                                    (kind, key)).fetchone() is not None

    def keys(self, kind: str) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT key FROM records WHERE kind=?", (kind,))}

    def iter(self, kind: str) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM records WHERE kind=? ORDER BY rowid",
                                    (kind,)).fetchall()
        for (d,) in rows:
            yield json.loads(d)

    def count(self, kind: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM records WHERE kind=?", (kind,)).fetchone()[0]

    def delete(self, kind: str, keys: Iterable[str] | None = None) -> None:
        with self._lock:
            if keys is None:
                self._db.execute("DELETE FROM records WHERE kind=?", (kind,))
            else:
                self._db.executemany("DELETE FROM records WHERE kind=? AND key=?",
                                     [(kind, k) for k in keys])
            self._db.commit()

    def kinds(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind"))

    # -- meta (small key/value facts such as a stage's completion marker) ----------
    def set_meta(self, k: str, v: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (k, json.dumps(v, default=str)))
            self._db.commit()

    def get_meta(self, k: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return json.loads(row[0]) if row else default

    # -- export ----------------------------------------------------------------------
    def frame(self, kind: str):
        """Records of one kind as a pandas DataFrame (one column per field)."""
        import pandas as pd

        return pd.DataFrame(list(self.iter(kind)))

    def export(self, kind: str, path: str | Path) -> Path:
        """Write records of one kind to ``.parquet`` or ``.jsonl`` (by suffix).

        ``kind="completions"`` exports the raw generation table instead (every request, its
        messages as JSON in `request`, the reply or the error, tokens, cost and attempts)."""
        rows = self.completion_rows() if kind == COMPLETIONS else list(self.iter(kind))
        return export_rows(rows, path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def export_rows(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write rows to ``.parquet`` or ``.jsonl`` (by suffix), atomically: the one export of the
    store's records and of a stage's tables (eval's items, prompts and answers)."""
    import pandas as pd

    from .atomic import atomic_path

    path = Path(path)
    if path.suffix not in (".parquet", ".jsonl"):
        raise ValueError(f"export: unsupported suffix {path.suffix!r} (use .parquet or .jsonl)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df = pd.DataFrame(rows)
            # Nested values (dicts, lists, tuples) go to parquet as JSON text: portable and lossless.
            for c in df.columns:
                if df[c].map(lambda v: isinstance(v, dict | list | tuple)).any():
                    df[c] = df[c].map(lambda v: json.dumps(v, ensure_ascii=False, default=str))
            df.to_parquet(tmp, index=False)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for d in rows:
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path
