"""The feedback store: predictions written in batches, labels joined to them, windows read back.

A :class:`Store` wraps one SQLAlchemy engine: SQLite (the embedded default, a file on a volume,
one replica) or PostgreSQL (``postgresql+psycopg://...``, several replicas). :meth:`Store.open`
brings the schema to the newest Alembic revision first, so a restart (or a new image) finds its
predictions and migrates them in place. Every method is blocking: callers on the event loop run
them in a thread (:mod:`drift_detector.feedback.recorder` has one writer thread).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, bindparam, create_engine, delete, event, func, select, update
from sqlalchemy.pool import ConnectionPoolEntry

from drift_detector.feedback.schema import predictions

__all__ = ["RECORD_COLUMNS", "LabelledWindow", "Match", "Store", "migrate"]

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
CHUNK = 500
RECORD_COLUMNS = (
    "prediction_id",
    "event_id",
    "row",
    "namespace",
    "inferenceservice",
    "component",
    "model_name",
    "model_version",
    "predicted_at",
    "features",
    "score",
    "predicted",
)
"""The order of a tuple given to :meth:`Store.record_many`."""
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
"""Ids per ``IN (...)`` lookup (SQLite allows 32766 parameters, PostgreSQL 65535)."""


@dataclass(frozen=True, slots=True)
class Match:
    """A stored prediction a feedback id names."""

    pk: int
    prediction_id: str
    event_id: str
    row: int
    rows: int
    """How many rows the prediction's request had (in its stream)."""
    inferenceservice: str
    model_name: str
    label: int | None


@dataclass(frozen=True)
class LabelledWindow:
    """One stream's predictions in a window: all of them counted, the labelled ones in full."""

    namespace: str
    inferenceservice: str
    component: str
    predictions: int
    labels: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray
    delays: np.ndarray
    """Seconds from prediction to label."""
    times: np.ndarray
    """When each labelled prediction was made (UNIX seconds), newest first."""


def migrate(engine: Engine) -> None:
    """Upgrade the schema to Alembic's head revision."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _sqlite_pragmas(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer thread
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        mark = _MARKS.get(engine.dialect.paramstyle)
        self._insert = (
            None
            if mark is None
            else f"INSERT INTO predictions ({', '.join(RECORD_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(RECORD_COLUMNS))})"
        )

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url`` (creating a SQLite file's folder) and migrate to the newest schema."""
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # --- predictions ----------------------------------------------------------------------------

    def record(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert predictions (dicts of the ``predictions`` columns but ``pk``, label unset)."""
        if rows:
            with self.engine.begin() as connection:
                connection.execute(predictions.insert(), list(rows))

    def record_many(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert predictions given as tuples in :data:`RECORD_COLUMNS` order: the recorder's path,
        one ``executemany`` on the driver (a third of the CPU of SQLAlchemy's per-row processing)."""
        if not rows:
            return
        if self._insert is None:
            self.record([dict(zip(RECORD_COLUMNS, r, strict=True)) for r in rows])
            return
        with self.engine.begin() as connection:
            connection.exec_driver_sql(self._insert, list(rows))

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())

    # --- feedback -------------------------------------------------------------------------------

    def find(self, ids: Iterable[str]) -> dict[str, list[Match]]:
        """Stored predictions by the id they were quoted with (answer ``id`` or ``ce-id``)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, list[Match]] = {}
        c = predictions.c
        columns = (
            c.pk,
            c.prediction_id,
            c.event_id,
            c.row,
            c.inferenceservice,
            c.component,
            c.model_name,
            c.label,
        )
        with self.engine.connect() as connection:
            records: list[Any] = []
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                query = select(*columns).where(c.prediction_id.in_(chunk) | c.event_id.in_(chunk))
                records.extend(connection.execute(query).all())
        sizes: dict[tuple[str, str, str], int] = {}
        for r in records:
            stream_key = (r.prediction_id, r.inferenceservice, r.component)
            sizes[stream_key] = sizes.get(stream_key, 0) + 1
        chosen = set(wanted)
        for r in records:
            match = Match(
                r.pk,
                r.prediction_id,
                r.event_id,
                r.row,
                sizes[(r.prediction_id, r.inferenceservice, r.component)],
                r.inferenceservice,
                r.model_name,
                r.label,
            )
            for quoted in {r.prediction_id, r.event_id} & chosen:
                found.setdefault(quoted, []).append(match)
        return found

    def label(self, labels: Sequence[tuple[int, int]], at: float) -> int:
        """Set ``(pk, label)`` where no label is set yet; how many rows were labelled."""
        if not labels:
            return 0
        c = predictions.c
        statement = (
            update(predictions)
            .where(c.pk == bindparam("b_pk"), c.label.is_(None))
            .values(label=bindparam("b_label"), labelled_at=at)
        )
        with self.engine.begin() as connection:
            result = connection.execute(statement, [{"b_pk": pk, "b_label": y} for pk, y in labels])
        return int(result.rowcount)

    # --- windows and retention ------------------------------------------------------------------

    def windows(self, since: float, limit: int) -> list[LabelledWindow]:
        """Per stream, the predictions made since ``since``: counted, and the newest ``limit``
        labelled ones with their label, score, predicted class and label delay."""
        c = predictions.c
        out: list[LabelledWindow] = []
        with self.engine.connect() as connection:
            streams = connection.execute(
                select(c.namespace, c.inferenceservice, c.component, func.count())
                .where(c.predicted_at >= since)
                .group_by(c.namespace, c.inferenceservice, c.component)
            ).all()
            for namespace, isvc, component, total in streams:
                labelled = connection.execute(
                    select(c.label, c.score, c.predicted, c.labelled_at - c.predicted_at, c.predicted_at)
                    .where(
                        c.predicted_at >= since,
                        c.namespace == namespace,
                        c.inferenceservice == isvc,
                        c.component == component,
                        c.label.is_not(None),
                    )
                    .order_by(c.predicted_at.desc())
                    .limit(limit)
                ).all()
                array = np.array(labelled, dtype=np.float64).reshape(-1, 5)
                out.append(
                    LabelledWindow(
                        namespace,
                        isvc,
                        component,
                        int(total),
                        array[:, 0].astype(np.int64),
                        array[:, 1],
                        array[:, 2].astype(np.int64),
                        array[:, 3],
                        array[:, 4],
                    )
                )
        return out

    def recent_features(
        self, streams: Iterable[tuple[str, str, str]], limit: int
    ) -> dict[tuple[str, str, str], np.ndarray]:
        """The features of each stream's newest ``limit`` predictions (for the status page)."""
        c = predictions.c
        out: dict[tuple[str, str, str], np.ndarray] = {}
        with self.engine.connect() as connection:
            for namespace, isvc, component in streams:
                texts = connection.execute(
                    select(c.features)
                    .where(c.inferenceservice == isvc, c.namespace == namespace, c.component == component)
                    .order_by(c.predicted_at.desc())
                    .limit(limit)
                ).scalars()
                rows = [[np.nan if v is None else v for v in orjson.loads(t)] for t in texts]
                out[(namespace, isvc, component)] = np.array(rows, dtype=np.float64)
        return out

    def labelled(
        self,
        since: float,
        until: float | None = None,
        inferenceservice: str | None = None,
        limit: int | None = None,
        after: int = 0,
    ) -> list[dict[str, Any]]:
        """Labelled predictions made in ``[since, until)``, in the order they were recorded, at most
        ``limit`` of those after the row key ``after`` (``pk``: the cursor to page on), for retraining."""
        c = predictions.c
        query = select(predictions).where(c.label.is_not(None), c.predicted_at >= since, c.pk > after)
        if until is not None:
            query = query.where(c.predicted_at < until)
        if inferenceservice is not None:
            query = query.where(c.inferenceservice == inferenceservice)
        query = query.order_by(c.pk)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]

    def purge(self, older_than: float, keep: int) -> int:
        """Delete predictions made before ``older_than``, then the oldest beyond ``keep``."""
        c = predictions.c
        with self.engine.begin() as connection:
            deleted = int(connection.execute(delete(predictions).where(c.predicted_at < older_than)).rowcount)
            total = int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())
            if total > keep:
                cutoff = connection.execute(
                    select(c.pk).order_by(c.pk).offset(total - keep).limit(1)
                ).scalar_one_or_none()
                older = delete(predictions) if cutoff is None else delete(predictions).where(c.pk < cutoff)
                deleted += int(connection.execute(older).rowcount)
        if deleted:
            log.info("retention: %d prediction(s) deleted", deleted)
        return deleted
