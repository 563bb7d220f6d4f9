"""The patch formats of the Kubernetes API: JSON merge patch, strategic merge patch, JSON Patch.

All three are pure functions `(document, patch) -> new document` that never mutate their input.

- JSON merge patch (RFC 7386): objects merge key by key, `null` deletes, anything else replaces.
- Strategic merge patch: a merge patch that merges lists of objects by a merge key
  (`containers` by `name`, service `ports` by `port`, container `ports` by `containerPort`, ...)
  and honours the directives `kubectl apply` writes: `$patch: replace|delete|merge`,
  `$setElementOrder/<list>`, `$retainKeys` and `$deleteFromPrimitiveList/<list>`. Lists with no
  known merge key are replaced, as the apiserver does for fields without a patch strategy.
- JSON Patch (RFC 6902): add, remove, replace, move, copy and test, with RFC 6901 pointers.

A malformed patch or a failed `test` raises `PatchError`, which the server answers with 422
Unprocessable Entity, as the apiserver does.
"""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]

# Fields whose lists the apiserver merges by a key (patchMergeKey in the Go types).
_MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "ports": ("containerPort", "port"),
    "conditions": ("type",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey",),
    "ownerReferences": ("uid",),
}


class PatchError(ValueError):
    """A patch that cannot be applied; the message is user-facing."""


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(doc: Any, patch: Any) -> Any:
    """Strategic merge patch, as far as the types this server serves need it."""
    return _smp(doc, patch, "")


def _smp(doc: Any, patch: Any, field: str) -> Any:
    if isinstance(patch, list):
        return _smp_list(doc if isinstance(doc, list) else [], patch, field)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if directive == "delete":
        return None
    result = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    retain = patch.pop("$retainKeys", None)
    orders = {}
    for key in [k for k in patch if k.startswith("$setElementOrder/")]:
        orders[key.split("/", 1)[1]] = patch.pop(key)
    for key in [k for k in patch if k.startswith("$deleteFromPrimitiveList/")]:
        name, remove = key.split("/", 1)[1], patch.pop(key)
        if isinstance(result.get(name), list):
            result[name] = [item for item in result[name] if item not in remove]
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
            continue
        merged = _smp(result.get(key), value, key)
        if merged is None and isinstance(value, dict):
            result.pop(key, None)
        else:
            result[key] = merged
    for name, order in orders.items():
        if isinstance(result.get(name), list) and isinstance(order, list):
            result[name] = _reorder(result[name], order, name)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    candidates = _MERGE_KEYS.get(field, ())
    for candidate in candidates:
        if items and all(isinstance(i, dict) and candidate in i for i in items):
            return candidate
    return None


def _smp_list(doc: list[Any], patch: list[Any], field: str) -> list[Any]:
    objects = [p for p in patch if isinstance(p, dict)]
    if any(p.get("$patch") == "replace" for p in objects):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    key = _merge_key(field, [p for p in objects if "$patch" not in p] or objects)
    if key is None or len(objects) != len(patch):
        return copy.deepcopy(patch)
    result = copy.deepcopy(doc)
    for item in patch:
        index = next(
            (
                i
                for i, d in enumerate(result)
                if isinstance(d, dict) and d.get(key) == item.get(key)
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_smp({}, item, field))
        else:
            result[index] = _smp(result[index], item, field)
    return result


def _reorder(items: list[Any], order: list[Any], field: str) -> list[Any]:
    key = _merge_key(field, [o for o in order if isinstance(o, dict)])
    if key is None:
        ranks = {repr(o): i for i, o in enumerate(order)}
        return sorted(items, key=lambda i: ranks.get(repr(i), len(ranks)))
    ranks = {repr(o.get(key)): i for i, o in enumerate(order)}
    return sorted(
        items, key=lambda i: ranks.get(repr(i.get(key)) if isinstance(i, dict) else "", len(ranks))
    )


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, insert: bool) -> int:
    if token == "-" and insert:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not insert):
        raise PatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path component {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, insert=False)]
        else:
            raise PatchError(f"path component {token!r} is not a container")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, insert=False)]
    raise PatchError(f"path {path!r} does not exist")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, insert=True), value)
    else:
        raise PatchError(f"cannot add at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r} does not exist")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, insert=False)]
    else:
        raise PatchError(f"cannot remove {path!r}")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON Patch; raises `PatchError` on a malformed operation or a failed test."""
    if not isinstance(operations, list):
        raise PatchError("a JSON Patch must be a list of operations")
    result = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"malformed JSON Patch operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {kind!r} needs a value")
        if kind == "add":
            result = _add(result, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            result = _remove(result, path)
        elif kind == "replace":
            _get(result, path)
            result = (
                _add(_remove(result, path), path, copy.deepcopy(op["value"]))
                if path
                else op["value"]
            )
        elif kind == "move":
            value = _get(result, op["from"])
            result = _add(_remove(result, op["from"]), path, value)
        elif kind == "copy":
            result = _add(result, path, copy.deepcopy(_get(result, op["from"])))
        elif kind == "test":
            if _get(result, path) != op["value"]:
                raise PatchError(f"test operation failed at {path!r}")
        else:
            raise PatchError(f"unknown JSON Patch operation {kind!r}")
    return result
