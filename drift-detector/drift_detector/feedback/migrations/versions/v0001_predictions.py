"""predictions: one row per predicted instance, with its label once fed back

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("prediction_id", sa.String(256), nullable=False),
        sa.Column("event_id", sa.String(256), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("inferenceservice", sa.String(253), nullable=False),
        sa.Column("component", sa.String(63), nullable=False),
        sa.Column("model_name", sa.String(253), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("predicted_at", sa.Float(precision=53), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(precision=53), nullable=False),
        sa.Column("predicted", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=True),
        sa.Column("labelled_at", sa.Float(precision=53), nullable=True),
    )
    op.create_index("ix_predictions_prediction_id", "predictions", ["prediction_id"])
    op.create_index("ix_predictions_event_id", "predictions", ["event_id"])
    op.create_index("ix_predictions_predicted_at", "predictions", ["predicted_at"])
    op.create_index("ix_predictions_stream_time", "predictions", ["inferenceservice", "predicted_at"])


def downgrade() -> None:
    op.drop_table("predictions")
