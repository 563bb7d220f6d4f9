"""Mutual TLS for xDS: the server's credentials, reloaded as their files change, and a client's.

xDS carries every tenant's private keys (SDS), so a controller that Envoys reach over the network
speaks only mutual TLS: the server presents its certificate and *requires* a client certificate
signed by a CA of its bundle; a client without one, or with one of another CA, fails the
handshake and never reaches a handler. ``TlsFiles.of(ca, cert, key)`` takes the three paths
(``--xds-ca --xds-cert --xds-key``): all three or none, anything else is one ``ValueError``.

Reloading without dropping a stream
-----------------------------------
The server's credentials are ``grpc.dynamic_ssl_server_credentials``: gRPC asks
``ServerCertificates.fetch`` for the certificate configuration at every new handshake, from one
of its own threads. ``fetch`` ``stat``s the three files (following symlinks: a Kubernetes Secret
volume swaps its ``..data`` symlink, which changes the inode behind ``tls.crt``), and only when
something changed reads them again. What it reads must parse and the key must match the
certificate; otherwise (a half-written rotation, a cert updated before its key) the previous
configuration stays in force and the next handshake looks again. Handshakes that already
happened are never revisited: open streams keep running on the session they negotiated, and
only new connections see the new certificate or CA.

The client side (``channel_credentials``, for ``controlplane xds`` and tests) checks the
server's name ``SERVER_NAME`` (``controlplane``), whatever address it dials, as Envoy's bootstrap
does: every replica, behind any Service or IP, holds the same server certificate.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import grpc
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["SERVER_NAME", "ServerCertificates", "TlsFiles", "channel_credentials"]

SERVER_NAME: Final = "controlplane"
"""The name clients check in the server's certificate (``controlplane certgen`` puts it there)."""

_log = structlog.get_logger(__name__)

_Fingerprint = tuple[tuple[int, int, int, int], ...]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The three PEM files of one side of the mTLS connection: CA bundle, certificate, key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def of(
        cls, ca: str | Path | None, cert: str | Path | None, key: str | Path | None
    ) -> TlsFiles | None:
        """All three paths, or ``None`` when none is given; ``ValueError`` for some only."""
        given = {"--xds-ca": ca, "--xds-cert": cert, "--xds-key": key}
        missing = [flag for flag, value in given.items() if not value]
        if len(missing) == len(given):
            return None
        if missing:
            raise ValueError(
                "--xds-ca, --xds-cert and --xds-key go together (mutual TLS needs all three); "
                f"missing {', '.join(missing)}"
            )
        assert ca and cert and key
        return cls(Path(ca), Path(cert), Path(key))

    def read(self) -> tuple[bytes, bytes, bytes]:
        """``(ca, cert, key)`` PEM bytes; ``ValueError`` names the file that is wrong."""
        ca, cert, key = (_read(p) for p in (self.ca, self.cert, self.key))
        try:
            roots = x509.load_pem_x509_certificates(ca)
        except ValueError:
            raise ValueError(f"{self.ca}: no PEM certificate") from None
        if not roots:
            raise ValueError(f"{self.ca}: no PEM certificate")
        try:
            certificate = x509.load_pem_x509_certificates(cert)[0]
        except (ValueError, IndexError):
            raise ValueError(f"{self.cert}: no PEM certificate") from None
        try:
            private_key = serialization.load_pem_private_key(key, password=None)
        except (ValueError, TypeError):
            raise ValueError(f"{self.key}: no unencrypted PEM private key") from None
        if certificate.public_key() != private_key.public_key():
            raise ValueError(f"{self.key} is not the key of {self.cert}")
        return ca, cert, key

    def fingerprint(self) -> _Fingerprint:
        """What changes when any of the files is replaced (``OSError`` if one is missing)."""
        stats = [os.stat(p) for p in (self.ca, self.cert, self.key)]
        return tuple((s.st_dev, s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: {error.strerror or error}") from None


class ServerCertificates:
    """The server's certificate configuration, re-read when its files change (module docstring).

    ``credentials()`` builds the ``grpc.ServerCredentials`` for ``add_secure_port``; ``reloads``
    counts configurations handed to gRPC after the first (for tests and the debug log).
    """

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._fingerprint = files.fingerprint()
        self._configuration = self._load()
        self.reloads = 0

    def _load(self) -> Any:
        ca, cert, key = self.files.read()
        certificate = x509.load_pem_x509_certificates(cert)[0]
        _log.info(
            "xds.tls.certificate",
            cert=str(self.files.cert),
            serial=f"{certificate.serial_number:x}",
            not_after=certificate.not_valid_after_utc.isoformat(),
        )
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration, self.fetch, require_client_authentication=True
        )

    def fetch(self) -> Any:
        """gRPC's per-handshake callback: a new configuration, or ``None`` for "unchanged".

        Runs on a gRPC thread; it must never raise (gRPC would fail the handshake).
        """
        with self._lock:
            try:
                fingerprint = self.files.fingerprint()
            except OSError as error:
                _log.warning("xds.tls.unreadable", error=str(error))
                return None
            if fingerprint == self._fingerprint:
                return None
            try:
                configuration = self._load()
            except ValueError as error:
                # Mid-rotation (cert swapped, key not yet): keep serving the previous one and
                # look again at the next handshake.
                _log.warning("xds.tls.reload_refused", error=str(error))
                return None
            self._fingerprint = fingerprint
            self._configuration = configuration
            self.reloads += 1
            _log.info("xds.tls.reloaded", reloads=self.reloads)
            return configuration


def channel_credentials(files: TlsFiles) -> tuple[grpc.ChannelCredentials, list[tuple[str, str]]]:
    """A client's credentials for ``files`` and the channel options that check ``SERVER_NAME``."""
    ca, cert, key = files.read()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    return credentials, [("grpc.ssl_target_name_override", SERVER_NAME)]
