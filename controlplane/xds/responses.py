"""Assemble DiscoveryResponse and DeltaDiscoveryResponse bytes from pre-encoded resources.

Only the small per-stream fields (version, nonce, removed names) are encoded here; every
resource contributes the ``any_field`` bytes it was given when it was built. The delta framing
reuses them too: ``envoy.service.discovery.v3.Resource`` keeps its ``Any`` in field 2, the same
number as ``DiscoveryResponse.resources``, so the cached field is valid inside it unchanged.

The gRPC handlers pass these bytes through a serializer that returns them as they are.
"""

from collections.abc import Iterable

from controlplane.protowire import field_bytes, field_str, join_fields, length_delimited_header
from controlplane.xds.snapshot import Resource

__all__ = ["delta_response", "sotw_response"]

# DiscoveryResponse
_VERSION_INFO = 1
_TYPE_URL = 4
_NONCE = 5
_CONTROL_PLANE = 6
# DeltaDiscoveryResponse
_SYSTEM_VERSION_INFO = 1
_DELTA_RESOURCES = 2
_DELTA_TYPE_URL = 4
_DELTA_NONCE = 5
_REMOVED_RESOURCES = 6
_DELTA_CONTROL_PLANE = 7
# envoy.service.discovery.v3.Resource
_RESOURCE_VERSION = 1
_RESOURCE_NAME = 3
# envoy.config.core.v3.ControlPlane
_IDENTIFIER = 1


def _control_plane(number: int, identifier: str) -> bytes:
    if not identifier:
        return b""
    return field_bytes(number, field_str(_IDENTIFIER, identifier))


def sotw_response(
    *,
    version_info: str,
    resources: Iterable[bytes],
    type_url: str,
    nonce: str,
    control_plane: str = "",
) -> bytes:
    """An encoded ``DiscoveryResponse``.

    ``resources`` are already-framed ``resources`` fields: ``Resource.any_field`` values or a
    whole joined run of them (``Snapshot.encoded_resources``).
    """
    pieces = [field_str(_VERSION_INFO, version_info)]
    pieces.extend(resources)
    pieces.append(field_str(_TYPE_URL, type_url))
    pieces.append(field_str(_NONCE, nonce))
    pieces.append(_control_plane(_CONTROL_PLANE, control_plane))
    return join_fields(pieces)


def delta_response(
    *,
    system_version_info: str,
    resources: Iterable[Resource],
    removed: Iterable[str],
    type_url: str,
    nonce: str,
    control_plane: str = "",
) -> bytes:
    """An encoded ``DeltaDiscoveryResponse``."""
    pieces = [field_str(_SYSTEM_VERSION_INFO, system_version_info)]
    for resource in resources:
        version = field_str(_RESOURCE_VERSION, resource.version)
        name = field_str(_RESOURCE_NAME, resource.name)
        size = len(version) + len(resource.any_field) + len(name)
        pieces.extend(
            (length_delimited_header(_DELTA_RESOURCES, size), version, resource.any_field, name)
        )
    pieces.append(field_str(_DELTA_TYPE_URL, type_url))
    pieces.append(field_str(_DELTA_NONCE, nonce))
    pieces.extend(field_str(_REMOVED_RESOURCES, name) for name in removed)
    pieces.append(_control_plane(_DELTA_CONTROL_PLANE, control_plane))
    return join_fields(pieces)
