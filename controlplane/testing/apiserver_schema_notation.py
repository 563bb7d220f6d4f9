"""The notation of the test API server's compact schemas: the two entry types and the key names.

A key of `apiserver_schemas.SCHEMAS` is a definition's name without its package prefix
(`core.v1.Service` is `io.k8s.api.core.v1.Service`, `meta.v1.ObjectMeta` is
`io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`; see `full_name`). A field is
`"TYPE[!] description"`: TYPE is `string`, `integer`, `number`, `boolean` or `object`, optionally
with `:FORMAT` (`integer:int32`), `[]TYPE`, `map[string]TYPE` or another definition's key;
`!` marks a required field. The three ``*_FIELD`` strings are the fields every kind has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "API_VERSION_FIELD",
    "KIND_FIELD",
    "METADATA_FIELD",
    "ObjectSchema",
    "Primitive",
    "full_name",
    "short_name",
]

_PACKAGES = (
    ("meta.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1."),
    ("intstr.", "io.k8s.apimachinery.pkg.util.intstr."),
    ("", "io.k8s.api."),
)


def full_name(short: str) -> str:
    """The OpenAPI definition name of a key of `apiserver_schemas.SCHEMAS`."""
    for prefix, package in _PACKAGES:
        if short.startswith(prefix):
            return package + short[len(prefix) :]
    raise AssertionError("unreachable: the last prefix is empty")


def short_name(full: str) -> str:
    """The key of `apiserver_schemas.SCHEMAS` for an OpenAPI definition name (`full_name`'s
    inverse)."""
    for prefix, package in _PACKAGES:
        if full.startswith(package):
            return prefix + full[len(package) :]
    return full


@dataclass(frozen=True)
class Primitive:
    """A named definition that is a plain value (`meta.v1.Time` is a date-time string)."""

    type: str
    description: str


@dataclass(frozen=True)
class ObjectSchema:
    """A named object definition; `gvk` is set on the kinds a resource is served as."""

    description: str
    fields: dict[str, str] = field(hash=False)
    gvk: tuple[str, str, str] | None = None


API_VERSION_FIELD = (
    "string APIVersion defines the versioned schema of this representation of an object."
)
KIND_FIELD = "string Kind is a string value representing the REST resource this object represents."
METADATA_FIELD = "meta.v1.ObjectMeta Standard object's metadata."
