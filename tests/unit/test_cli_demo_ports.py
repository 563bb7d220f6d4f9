"""The demo's pure parts: which ports it takes, and how it reads Envoy's listeners."""

from __future__ import annotations

import pytest

from controlplane.demo import DemoError, DemoPorts, choose_ports, listener_states, port_is_free


def test_ports_not_asked_for_are_the_usual_ones_when_free_else_others() -> None:
    usual = DemoPorts()
    avoid = {usual.http, usual.xds, usual.admin}  # as if the examples' backends used them
    ports = choose_ports({"http": None}, avoid=avoid)
    chosen = [ports.http, ports.https, ports.xds, ports.health, ports.admin, ports.stats]
    assert len(set(chosen)) == 6 and not avoid & set(chosen)
    for port, default in zip(chosen, [8080, 8443, 8001, 8000, 9001, 8002], strict=True):
        assert port == default or default in avoid or not port_is_free(default, "0.0.0.0")


def test_a_port_asked_for_is_taken_as_it_is_or_refused() -> None:
    ports = choose_ports({"http": 18080, "health": None})
    assert ports.http == 18080 and ports.health != 18080
    with pytest.raises(DemoError, match=r"^--xds-port 9101: that port is already used by the"):
        choose_ports({"xds": 9101}, avoid={9101})


def test_envoy_listeners_active_failed_and_warming() -> None:
    failed = {"details": "cannot bind '0.0.0.0:8080': Address already in use"}
    dump = {
        "configs": [
            {"name": "ingress_https", "active_state": {}},
            {"name": "ingress_http", "error_state": failed},
            {"error_state": failed},  # Envoy repeats the failed update without a name
        ]
    }
    assert listener_states(dump) == (
        ["ingress_https"],
        {"ingress_http": "cannot bind '0.0.0.0:8080': Address already in use"},
        False,
    )
    warming = {"configs": [{"name": "ingress_http", "warming_state": {}}]}
    assert listener_states(warming) == ([], {}, True)
