"""The payload logger's warnings are rate-limited: a receiver that is down fails every batch, and
the log gets one line per WARN_EVERY_SECONDS (with how many were left out), while every failed
event is still counted."""

from __future__ import annotations

import logging
import time

import pytest
from serving_common.payload_logger import PayloadLogger
from support import free_port


def test_a_receiver_that_is_down_gives_one_warning_not_one_per_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()  # nobody listens: every send fails
    logger = PayloadLogger(
        f"http://127.0.0.1:{port}/", inference_service="isvc", timeout=0.2, linger=0.0, max_batch=1
    )
    with caplog.at_level(logging.WARNING, logger="serving_common.payload_logger"):
        logger.open()
        try:
            for i in range(40):
                logger.log_request(f"id-{i}", b"{}", "application/json")
                for _ in range(500):  # bounded: one event at a time, so 40 failed batches
                    stats = logger.stats()
                    if stats.failed + stats.dropped >= i + 1:
                        break
                    time.sleep(0.01)
        finally:
            logger.close(drain_timeout=0)
    stats = logger.stats()
    assert stats.failed + stats.dropped == 40, stats
    warnings = [r for r in caplog.records if "not accepted" in r.getMessage()]
    assert 1 <= len(warnings) <= 2, [r.getMessage() for r in warnings]
