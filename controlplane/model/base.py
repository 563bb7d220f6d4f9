"""Shared pieces of every Kubernetes object model: metadata and parsing conventions.

Models are parsed once, at the edge (informers, file source), and are immutable afterwards. They
accept the camelCase JSON that Kubernetes serves and expose snake_case attributes. Unknown fields
are ignored: the store keeps only what the DAG needs, so memory stays proportional to what matters.

Values the DAG must judge (ports out of range, negative weights, bad durations) are *not* rejected
here: they parse, and the DAG turns them into a status that names the field. Only structurally
broken objects (a string where a list belongs) fail to parse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNSTAMPED = datetime(9999, 1, 1, tzinfo=UTC)
"""Where objects without a creationTimestamp (manifest files) stand in "oldest wins": after
every object that has one. The store spaces them out from here in the order it first saw them."""


AgeKey = tuple[datetime, str, str]
"""`KubeObject.age_key`: creation time, namespace, name; the smallest is the oldest."""


def shown(text: str) -> str:
    """`text` as a status or log quotes it: control characters escaped, at most 100 characters,
    so a hostile value can neither break the line nor flood `kubectl get`."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= 100 else escaped[:97] + "..."


class KubeModel(BaseModel):
    """Base for every parsed Kubernetes structure: frozen, camelCase aliases, extras ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        alias_generator=to_camel,
        populate_by_name=True,
    )


class ObjectMeta(KubeModel):
    name: str = Field(min_length=1)
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: datetime | None = None
    """None when the manifest has none (or `null`, as `kubectl create --dry-run` writes)."""
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("creation_timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A timestamp without a zone is UTC (Kubernetes writes UTC): naive and aware times
        cannot be compared, and ages are compared across objects."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def annotation(self, *names: str) -> str | None:
        """The value of the first annotation present among `names` (aliases, newest first)."""
        for name in names:
            value = self.annotations.get(name)
            if value is not None:
                return value
        return None


class KubeObject(KubeModel):
    """A top-level object: has `metadata`. Subclasses set `KIND` and `API_VERSIONS`."""

    KIND: ClassVar[str] = ""
    API_VERSIONS: ClassVar[tuple[str, ...]] = ()
    NAMESPACED: ClassVar[bool] = True

    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def age_key(self) -> AgeKey:
        """Sort key for "oldest wins" conflict resolution: creation time, then namespace/name
        (objects without a creation time are the youngest; see `UNSTAMPED`)."""
        created = self.metadata.creation_timestamp or UNSTAMPED
        return (created, self.metadata.namespace, self.metadata.name)
