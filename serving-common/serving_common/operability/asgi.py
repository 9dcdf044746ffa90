"""An ASGI middleware (pure: no web framework imported) that gives every HTTP request of an app
its context: the request id and trace id on the log lines about it (and on its access line), a
span when tracing is on (whose ``traceparent`` then replaces the caller's in the request, so that
what the app forwards to the predictor continues *this* span), and ``x-request-id`` on every
answer that does not carry one. For apps whose routes are not ours to change (KServe's FastAPI
app, with the explainer's routes): ``app.add_middleware(RequestContext)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving_common.headers import new_id
from serving_common.operability import tracing
from serving_common.operability.logs import REQUEST_ID, TRACE_ID, trace_id_of

__all__ = ["RequestContext", "RequestIds"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _answer_with_id(send: Send, rid: str) -> Send:
    """``send`` that puts ``x-request-id: rid`` on the answer unless the app already named one, and
    sets :data:`REQUEST_ID` to the id the answer carries (so the access line names it too)."""

    async def answer(message: Message) -> None:
        if message["type"] == "http.response.start":
            sent = message.setdefault("headers", [])
            given = next((v for k, v in sent if k.lower() == b"x-request-id"), None)
            if given is None:
                sent.append((b"x-request-id", rid.encode("latin-1")))
                REQUEST_ID.set(rid)
            else:
                REQUEST_ID.set(given.decode("latin-1"))
        await send(message)

    return answer


def _incoming_id(scope: Scope) -> str | None:
    for k, v in scope["headers"]:
        if k.lower() == b"x-request-id" and v:
            value: str = v.decode("latin-1")
            if value.isascii() and value.isprintable():
                return value
    return None


class RequestIds:
    """The outermost layer of an app: ``x-request-id`` on EVERY answer, whoever answers it (a gate's
    413 or 503, a framework's 404, the app's 200): the caller's id, else a new one, unless the
    answer already names one (a V2 answer's own ``id``). The access line carries the same id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_id(scope) or new_id()
        REQUEST_ID.set(rid)
        await self.app(scope, receive, _answer_with_id(send, rid))


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = _incoming_id(scope) or new_id()
        REQUEST_ID.set(rid)
        answer = _answer_with_id(send, rid)

        if tracing.enabled() and scope["method"] == "POST":
            with tracing.server_span(f"POST {scope['path']}", headers):
                outgoing = tracing.outgoing(dict(headers))
                scope["headers"] = [
                    (k, v) for k, v in scope["headers"] if k.lower() not in (b"traceparent", b"tracestate")
                ] + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in outgoing.items()
                     if k in ("traceparent", "tracestate")]  # fmt: skip
                await self.app(scope, receive, answer)
            return
        TRACE_ID.set(trace_id_of(headers.get("traceparent")))
        await self.app(scope, receive, answer)
