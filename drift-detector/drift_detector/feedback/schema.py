"""The feedback store's tables (SQLAlchemy Core): one row per predicted instance, its label beside it.

``predictions`` holds what retraining (issue 14) and the quality monitor need: the stream
(``namespace``, ``inferenceservice``, ``component``), the ids a client may quote (``prediction_id``
= the answer's ``id``; ``event_id`` = the payload log's ``ce-id``), the row of a multi-row request,
the model that answered, the encoded features as JSON (spec order; ``null`` = NaN), the
positive-class ``score``, the ``predicted`` class index, and once fed back the ``label`` (class
index) with ``labelled_at``. Times are UNIX seconds (float) so SQLite and PostgreSQL agree.

The schema is created and changed only by the Alembic migrations beside this module.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

__all__ = ["metadata", "predictions"]

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(256), nullable=False),
    Column("event_id", String(256), nullable=False),
    Column("row", Integer, nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("inferenceservice", String(253), nullable=False),
    Column("component", String(63), nullable=False),
    Column("model_name", String(253), nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("predicted_at", Float(precision=53), nullable=False),
    Column("features", Text, nullable=False),
    Column("score", Float(precision=53), nullable=False),
    Column("predicted", Integer, nullable=False),
    Column("label", Integer, nullable=True),
    Column("labelled_at", Float(precision=53), nullable=True),
    Index("ix_predictions_prediction_id", "prediction_id"),
    Index("ix_predictions_event_id", "event_id"),
    Index("ix_predictions_predicted_at", "predicted_at"),
    Index("ix_predictions_stream_time", "inferenceservice", "predicted_at"),
)
