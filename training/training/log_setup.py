"""Training's logging: serving_common's one format (JSON or text) with the exporter's chatter held back."""

from __future__ import annotations

import logging
from typing import Literal

from serving_common.operability import configure_logging

LIBRARY_LOGGERS = ("onnx_ir", "onnxscript", "onnx", "torch.onnx", "sklearn")
"""The ONNX exporter's passes log every step at INFO: held at WARNING."""


def configure(fmt: Literal["text", "json"]) -> None:
    configure_logging("training", fmt, "INFO", quiet=LIBRARY_LOGGERS)
    logging.getLogger("torch").setLevel(logging.ERROR)  # the ONNX exporter's "torchvision is not installed"
