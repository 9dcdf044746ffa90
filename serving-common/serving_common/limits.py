"""Request limits enforced at the ASGI level, before a body is read whole (pure: no KServe import).

Every component's HTTP front (the predictor's fast path, the drift detector's ingress, ...) calls
:func:`check_headers` on the scope and reads bodies with :func:`read_body`, which stops at the
limit. A limit that is hit raises :class:`LimitExceeded`, carrying the HTTP status (413 body,
431 headers, 408 half-sent body) and a message naming the limit and the setting that sets it::

    LimitExceeded                 (status, message)
      BodyTooLarge                413  body over <PREFIX>MAX_BODY_BYTES (Content-Length or streamed)
      HeadersTooLarge             431  more than <PREFIX>MAX_HEADERS headers / <PREFIX>MAX_HEADER_BYTES bytes
      BodyTimeout                 408  body not complete within <PREFIX>BODY_TIMEOUT_SECONDS
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BodyTimeout",
    "BodyTooLarge",
    "HeadersTooLarge",
    "LimitExceeded",
    "Limits",
    "check_headers",
    "read_body",
]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


class LimitExceeded(Exception):
    """A request over one of :class:`Limits`; ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BodyTooLarge(LimitExceeded):
    status = 413


class HeadersTooLarge(LimitExceeded):
    status = 431


class BodyTimeout(LimitExceeded):
    status = 408


@dataclass(frozen=True)
class Limits:
    """The limits of one HTTP front; ``prefix`` is the settings' env prefix (named in messages)."""

    prefix: str
    max_body_bytes: int
    max_headers: int
    max_header_bytes: int
    body_timeout_seconds: float


def check_headers(headers: Iterable[tuple[bytes, bytes]], limits: Limits) -> int | None:
    """Raise :class:`HeadersTooLarge` when there are too many headers or too many header bytes;
    else return the ``Content-Length`` (``None`` when absent), raising :class:`BodyTooLarge` when
    it announces more than the body limit. One pass, no dict: 20,000 headers cost 20,000 steps."""
    size = 0
    length: int | None = None
    for count, (name, value) in enumerate(headers, 1):
        size += len(name) + len(value)
        if count > limits.max_headers:
            raise HeadersTooLarge(
                f"the request has more than {limits.max_headers} headers "
                f"({limits.prefix}MAX_HEADERS={limits.max_headers})"
            )
        if name == b"content-length" and value.isdigit():
            length = int(value)
    if size > limits.max_header_bytes:
        raise HeadersTooLarge(
            f"the request's headers are {size} bytes, more than {limits.prefix}MAX_HEADER_BYTES="
            f"{limits.max_header_bytes}"
        )
    if length is not None and length > limits.max_body_bytes:
        raise BodyTooLarge(
            f"the request body is {length} bytes, more than {limits.prefix}MAX_BODY_BYTES="
            f"{limits.max_body_bytes}"
        )
    return length


async def read_body(receive: Receive, limits: Limits) -> bytes | None:
    """The whole body, or ``None`` when the client went away; stops reading at the limit
    (:class:`BodyTooLarge`) and when the body does not complete in time (:class:`BodyTimeout`)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limits.body_timeout_seconds):  # a timer handle, not a task
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise BodyTooLarge(
                        f"the request body is more than {limits.max_body_bytes} bytes "
                        f"({limits.prefix}MAX_BODY_BYTES={limits.max_body_bytes})"
                    )
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        raise BodyTimeout(
            f"the request body did not arrive in full within {limits.body_timeout_seconds:g} s "
            f"({limits.prefix}BODY_TIMEOUT_SECONDS)"
        ) from None
