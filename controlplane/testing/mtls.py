"""Mutual TLS test parts: Secret volumes that rotate like the kubelet's, and a TLS probe.

``SecretVolume(directory)`` lays files out as the kubelet does for a Secret volume, and
updates them the same way (``AtomicWriter``): the files live in a timestamped directory
``..YYYY_MM_DD_hh_mm_ss.N``; ``..data`` is a symlink to it; each visible name (``tls.crt``) is a
symlink to ``..data/tls.crt``. An update writes a new timestamped directory, points a
``..data_tmp`` symlink at it and *renames* that over ``..data`` (the one atomic step, a move
inside the directory, which is what Envoy's ``watched_directory`` watches), then removes the old
directory. Readers following ``tls.crt`` see either every old file or every new one.

``served_certificate(host, port, ...)`` performs one TLS handshake (ALPN ``h2``, as gRPC
clients do) and returns the certificate the server presented, or raises ``ssl.SSLError`` /
``OSError`` when the handshake is refused. It blocks: call it through ``asyncio.to_thread``.

``volumes_for(bundle, root)`` puts a ``controlplane certgen`` bundle into two such volumes,
``root/controlplane`` and ``root/envoy``, each holding ``ca.crt``, ``tls.crt`` and ``tls.key``
like the Secrets ``certgen --kubernetes`` writes.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import ssl
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography import x509

from controlplane.certgen import Bundle, Leaf

__all__ = ["SecretVolume", "scratch_dir", "served_certificate", "update_volumes", "volumes_for"]

_SERIAL = itertools.count(1)


class SecretVolume:
    """A directory updated like a Kubernetes Secret volume (see the module docstring)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.updates = 0

    def path(self, name: str) -> Path:
        """The path a pod would use: ``DIR/NAME``, a symlink through ``..data``."""
        return self.directory / name

    def write(self, files: Mapping[str, bytes]) -> None:
        """Replace the volume's contents with ``files``, atomically, as the kubelet does."""
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime())
        target = self.directory / f"{stamp}.{os.getpid()}{next(_SERIAL)}"
        target.mkdir(mode=0o755)
        for name, data in files.items():
            (target / name).write_bytes(data)
            (target / name).chmod(0o600 if name.endswith(".key") else 0o644)
        data_link = self.directory / "..data"
        previous = os.readlink(data_link) if data_link.is_symlink() else None
        temporary = self.directory / "..data_tmp"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target.name)
        os.replace(temporary, data_link)
        for name in files:
            visible = self.directory / name
            if not visible.is_symlink():
                visible.symlink_to(Path("..data") / name)
        if previous is not None:
            shutil.rmtree(self.directory / previous, ignore_errors=True)
        self.updates += 1


def volumes_for(bundle: Bundle, root: str | Path) -> tuple[SecretVolume, SecretVolume]:
    """``(controlplane, envoy)`` Secret volumes under ``root`` holding ``bundle``."""
    server = SecretVolume(Path(root) / "controlplane")
    client = SecretVolume(Path(root) / "envoy")
    update_volumes(bundle, server, client)
    return server, client


def update_volumes(
    bundle: Bundle, server: SecretVolume | None, client: SecretVolume | None
) -> None:
    """Write ``bundle``'s server side to ``server`` and its client side to ``client``."""

    def files(leaf: Leaf) -> dict[str, bytes]:
        return {"ca.crt": bundle.ca_pem, "tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem}

    if server is not None:
        server.write(files(bundle.controlplane))
    if client is not None:
        client.write(files(bundle.envoy))


def served_certificate(
    host: str,
    port: int,
    *,
    ca: Path,
    cert: Path | None = None,
    key: Path | None = None,
    server_name: str = "controlplane",
    timeout_s: float = 5.0,
) -> x509.Certificate:
    """The certificate the server at ``host:port`` presents to this client (module docstring).

    Completing the handshake is not enough to be let in when the server requires a client
    certificate and TLS 1.3 is used: the server's verdict arrives after it. So this reads once:
    a refused client sees the connection closed (``ConnectionError`` or ``ssl.SSLError``).
    """
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    with (
        socket.create_connection((host, port), timeout=timeout_s) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        # The client's HTTP/2 preface; the server answers with its SETTINGS, or with an alert.
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        if not tls.recv(9):
            raise ConnectionError("the server closed the connection after the handshake")
        return x509.load_der_x509_certificate(der)


def scratch_dir(prefix: str = "mtls-") -> Path:
    """A short temporary directory (unix socket paths and watched directories stay short)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if Path("/tmp").is_dir() else None))
