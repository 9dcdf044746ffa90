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

__all__ = ["RequestContext"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id") or new_id()
        REQUEST_ID.set(rid)

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent = message.setdefault("headers", [])
                given = next((v for k, v in sent if k.lower() == b"x-request-id"), None)
                if given is None:
                    sent.append((b"x-request-id", rid.encode("latin-1")))
                else:
                    REQUEST_ID.set(given.decode("latin-1"))  # the access line names the answer's id
            await send(message)

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
