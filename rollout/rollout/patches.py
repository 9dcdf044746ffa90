"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on plain dicts, as the API server applies them.

Used by the local router (:mod:`rollout.local`), which keeps the VirtualService in a file and must
give patches the API server's meaning: a failed ``test`` op is a conflict, a path that does not
exist is an invalid patch.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchError", "PatchTestFailed", "json_patch", "merge_patch"]

Obj = dict[str, Any]


class PatchError(ValueError):
    """The patch does not apply to the document (the API server answers 422)."""


class PatchTestFailed(PatchError):
    """A ``test`` op found a different value: the document changed since it was read."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 on a copy of ``target``: ``None`` removes a key, dicts merge, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}: must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise PatchError(f"path {pointer!r} does not exist in the document")


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for t in _tokens(pointer):
        node = _child(node, t, pointer)
    return node


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("operations on the whole document are not supported")
    node = doc
    for t in tokens[:-1]:
        node = _child(node, t, pointer)
    return node, tokens[-1]


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list) and last == "-":
        parent.append(value)
    elif isinstance(parent, list) and last.isdigit() and int(last) <= len(parent):
        parent.insert(int(last), value)
    else:
        raise PatchError(f"add: path {pointer!r} does not exist in the document")


def _remove(doc: Any, pointer: str) -> Any:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise PatchError(f"remove: path {pointer!r} does not exist in the document")


def json_patch(doc: Any, ops: list[Obj]) -> Any:
    """RFC 6902 (``test``, ``add``, ``remove``, ``replace``) on a copy of ``doc``; all or nothing."""
    doc = copy.deepcopy(doc)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "path" not in op:
            raise PatchError(f"op {i}: expected an object with 'op' and 'path', got {op!r}")
        kind, path = op.get("op"), str(op["path"])
        if kind == "test":
            try:
                actual = _get(doc, path)
            except PatchError as e:
                raise PatchTestFailed(f"testing value {path} failed: {e}") from e
            if actual != op.get("value"):
                raise PatchTestFailed(
                    f"testing value {path} failed: is {actual!r}, expected {op.get('value')!r}"
                )
        elif kind == "add":
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            parent, last = _parent(doc, path)
            parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op.get("value"))
        else:
            raise PatchError(f"op {i}: unsupported operation {kind!r} (test, add, remove, replace)")
    return doc
