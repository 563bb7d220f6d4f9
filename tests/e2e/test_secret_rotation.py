"""Issue 13 item 6 end to end: a certificate renewal drains nothing.

A Secret's SDS name is its `namespace/name` (`TLSSecret`), so a renewal (cert-manager patching
the Secret with a new certificate and key) changes one SDS resource and not the `ingress_https`
listener that names it. Through the whole pipeline (manifest files → the controller in-process
→ a real Envoy → a local backend), in each xDS framing Envoy can be bootstrapped with:

- one keep-alive HTTPS connection, opened with the old certificate, sends a request every few
  milliseconds before, during and after the renewal: every answer is a 200 and none asks to
  close the connection (as a draining listener's would);
- a websocket over TLS echoes before and after the renewal, on the same connection;
- a new TLS handshake sees the new certificate (its serial number) once Envoy has it;
- Envoy's own counters say no listener was modified or drained (`listener_manager.*`, the
  HTTPS connection manager's drain closes), while its SDS counter says the secret was updated;
  the controller pushed SDS and never LDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from pipeline import Pipeline, endpoint_slice, ingress, service
from test_no_drops import nacks, pushes, write_atomically
from waiting import eventually

from controlplane.testing.backends import Backend
from controlplane.testing.certs import CertKey, issue_leaf, make_ca, tls_secret

pytestmark = pytest.mark.e2e

HOST = "secure.local"
SDS_NAME = "default/tls"
# Envoy's counters and gauges that move when a listener is updated or a filter chain drained.
UNTOUCHED = (
    "listener_manager.lds.update_attempt",
    "listener_manager.lds.update_success",
    "listener_manager.listener_added",
    "listener_manager.listener_modified",
    "listener_manager.listener_in_place_updated",
    "listener_manager.listener_removed",
    "listener_manager.total_filter_chains_draining",
    "listener_manager.total_listeners_draining",
    "http.ingress_https.downstream_cx_drain_close",
)
SDS_UPDATES = f"sds.{SDS_NAME}.update_success"


def serial(pair_or_der: CertKey | bytes) -> int:
    if isinstance(pair_or_der, CertKey):
        return pair_or_der.certificate.serial_number
    return x509.load_der_x509_certificate(pair_or_der).serial_number


async def handshake_serial(port: int, context: ssl.SSLContext) -> int:
    """The serial number of the certificate a brand-new TLS handshake is served."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=HOST)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()
    return serial(der)


class KeepAlive:
    """One HTTP/1.1 keep-alive connection over TLS, a request every few milliseconds.

    Written on the socket itself, so nothing can quietly reconnect: a connection Envoy closes
    (or asks to close, `connection: close`, as a draining listener does) is a failure."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port = port
        self.context = context
        self.answers = 0
        self.failures: list[str] = []
        self.serial = 0
        """The serial number of the certificate this connection was handshaken with."""
        self._stop = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.context, server_hostname=HOST
        )
        self.serial = serial(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        try:
            while not self._stop.is_set():
                writer.write(request)
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                status, headers = _parse(head)
                await reader.readexactly(int(headers.get("content-length", "0")))
                if status != 200 or headers.get("connection") == "close":
                    self.failures.append(f"HTTP {status}, connection: {headers.get('connection')}")
                    return
                self.answers += 1
                await asyncio.sleep(0.003)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ssl.SSLError) as error:
            self.failures.append(repr(error))
        finally:
            writer.close()
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                await writer.wait_closed()

    def stop(self) -> None:
        self._stop.set()


def _parse(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with Backend("web") as web:
        yield web


async def answered(traffic: KeepAlive, more: int) -> None:
    target = traffic.answers + more
    await eventually(
        lambda: traffic.answers >= target or bool(traffic.failures),
        within=10.0,
        message=f"{more} more answers on the keep-alive connection",
    )


@pytest.mark.parametrize("mode", ["ads", "delta", "separate"])
async def test_a_certificate_renewal_drains_nothing(
    tmp_path: Path, backend: Backend, mode: str
) -> None:
    ca = make_ca()
    first, renewed = issue_leaf(ca, [HOST]), issue_leaf(ca, [HOST])
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    write_atomically(
        tmp_path,
        "app.yaml",
        service("web", backend.port),
        endpoint_slice("web", backend.port),
        ingress(
            "secure",
            HOST,
            [("/", "Prefix", "web"), ("/ws", "Prefix", "web")],
            tls_secret="tls",
            annotations={"contour.heptio.com/websocket-routes": "/ws"},
        ),
    )
    write_atomically(tmp_path, "secret.yaml", tls_secret("tls", "default", first))
    async with Pipeline(tmp_path, xds_mode=mode) as pipe:
        assert pipe.envoy is not None
        await pipe.eventually(HOST, "/", lambda a: a.backend == "web", https=True, ca=ca.cert_pem)
        assert await handshake_serial(pipe.https_port, context) == serial(first)
        before = await pipe.envoy.stats()
        lds_before, sds_before = pushes("lds"), pushes("sds")

        traffic = KeepAlive(pipe.https_port, context)
        running = asyncio.create_task(traffic.run())
        url = f"https://127.0.0.1:{pipe.https_port}/ws"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url, headers={"Host": HOST}, ssl=context, server_hostname=HOST
            ) as socket,
        ):
            await socket.send_str("before")
            assert await asyncio.wait_for(socket.receive_str(), 5) == "before"
            await answered(traffic, 20)

            # cert-manager renews: the same Secret, a new certificate and key.
            write_atomically(tmp_path, "secret.yaml", tls_secret("tls", "default", renewed))

            async def renewed_handshake() -> bool:
                return await handshake_serial(pipe.https_port, context) == serial(renewed)

            await eventually(renewed_handshake, within=10.0, message="a handshake sees the renewal")
            await answered(traffic, 20)

            await socket.send_str("after")
            assert await asyncio.wait_for(socket.receive_str(), 5) == "after"
            assert not socket.closed
        traffic.stop()
        await running
        after = await pipe.envoy.stats()
        assert await nacks(pipe) == []

    assert traffic.failures == [], traffic.failures
    assert traffic.answers >= 40
    assert traffic.serial == serial(first)  # the one connection, from before the renewal
    changed = {name: (before.get(name), after.get(name)) for name in UNTOUCHED}
    assert all(old == new is not None for old, new in changed.values()), changed
    assert after[SDS_UPDATES] == before[SDS_UPDATES] + 1, (before[SDS_UPDATES], after)
    assert pushes("lds") == lds_before, "a listener was sent for the renewal"
    assert pushes("sds") > sds_before
