"""Hostile values: pools of good and bad strings, numbers, hosts, paths, addresses, names,
durations and key material, and `Hostility`, the per-object rate at which a field turns bad.

Strings: a good value with one character spliced in (every C0 and C1 control character and DEL,
NUL included, odd Unicode such as line separators, BOM, bidi overrides and look-alikes, and URL
and regex metacharacters), a known-bad value, or any text at all. Numbers: every boundary and
beyond (0, -1, 65536, 2^31, 2^32, 2^63, 2^64, 10^30), arbitrary integers, and values that are
not integers. Names collide on purpose with the good tenant's namespace, names and fqdn.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from controlplane.testing import certs

from .tenant import GOOD_FQDN, GOOD_INGRESS_HOST, GOOD_NAMESPACE, GOOD_SERVICES, good_pair

JSON = dict[str, Any]


CONTROL_CHARACTERS = tuple(chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)))
"""Every C0 control (NUL included), DEL and every C1 control."""
ODD_CHARACTERS = (
    " ",
    "\u00a0",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\u200b",
    "\u202e",
    "\u0130",
    "\u212a",
    "\uff0f",
    "\u2215",
    "\u0301",
    "\ufffd",
    "\U0001f600",
    "\U0010ffff",
    "é",
    "%",
    "%00",
    "%0a",
    "?",
    "#",
    "\\",
    '"',
    "'",
    "*",
    "..",
    "//",
    ":",
    "@",
    "{",
    "<",
)
INTEGERS = (
    0,
    -1,
    1,
    65535,
    65536,
    70000,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63),
    10**30,
)
NUMBER_TEXT = (
    "",
    "0",
    "-1",
    "+5",
    " 12",
    "12\n",
    "1e3",
    "0x10",
    "1_000",
    "\u0661\u0662",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999999",
    "NaN",
    "∞",
)
DURATIONS = ("10s", "1m30s", "250ms", "1h", "0s", "infinity")
HOSTILE_DURATIONS = (
    "",
    "soon",
    "-1s",
    "1000000000h",
    "2562047h47m16.854775807s",
    "9223372036s",
    "9223372036854775807ns",
    "1e309s",
    "NaN",
    "inf",
    "-infinity",
    "0.0000000001s",
    "1.5h\n",
    " 1s",
    "1.s",
    ".5s",
    "1µs",
    "1d",
    "\u0661s",
    "1s\x00",
)
GOOD_LOOKALIKES = (
    GOOD_FQDN,
    GOOD_FQDN.upper(),
    "Good.Example.Com",
    GOOD_FQDN + ".",
    " " + GOOD_FQDN,
    GOOD_FQDN + " ",
    GOOD_FQDN + ":443",
    GOOD_FQDN + ":80",
    GOOD_FQDN + "\x00",
    GOOD_FQDN + "\n",
    GOOD_FQDN + "..",
    "*.example.com",
    "*.good.example.com",
    "*" + GOOD_FQDN,
    "\uff47\uff4f\uff4f\uff44.example.com",  # fullwidth
    "g\u043e\u043ed.example.com",
    "xn--gd-fka.example.com",
    GOOD_INGRESS_HOST,
    GOOD_INGRESS_HOST.upper(),
)
HOSTS = (
    "bad.example.com",
    "www.bad.example.com",
    "evil.example.com",
    "x.example.com",
    GOOD_FQDN,
    GOOD_INGRESS_HOST,
)
"""Hosts a hostile object may well name: its own, and the good tenant's (which it must not get)."""
HOSTILE_HOSTS = (
    *GOOD_LOOKALIKES,
    "",
    "*",
    ".",
    "..",
    "a..b.com",
    "-bad.example.com",
    "bad-.example.com",
    "bad_.example.com",
    "a b.example.com",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "::1",
    "a" * 63 + ".com",
    "a" * 64 + ".com",
    ".".join(["a" * 63] * 4),
    "a." * 127 + "a",
    "gööd.example.com",
    "http://bad.example.com/",
    "bad.example.com/path",
    "*.*.example.com",
    "bad.example.com:99999",
)
PATHS = ("/", "/api", "/blog", "/blog/post", "/foo/bar", "/v1/", "/a%20b", "/~user")
HOSTILE_PATHS = (
    "",
    "api",
    "*",
    "/*",
    "/a b",
    "/a\tb",
    "/a?b",
    "/a#b",
    "//",
    "/..",
    "/./x",
    "/a\\b",
    "/%00",
    "/%2F",
    "/(.*)",
    "/[",
    "/\u65e5\u672c",
    "/\x7f",
    "/blogger",
    "/" + "a" * 5000,
    "/" + "a" * 70000,
)
ADDRESSES = ("10.2.0.1", "10.2.0.2", "192.168.1.10", "fd00::1", "2001:db8::10")
HOSTILE_ADDRESSES = (
    "",
    "127.0.0.1",
    "127.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "::",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",
    "169.254.169.254",
    "fe80::1",
    "fe80::1%eth0",
    "localhost",
    "example.com",
    "10.0.0.1:8080",
    "10.0.0.256",
    "1.2.3.4.5",
    "010.000.000.001",
    "0x7f.0.0.1",
    "2130706433",
    "\u0661\u0662\u0667.0.0.1",
    " 10.0.0.1",
    "10.0.0.1\n",
    "10.0.0.1\x00",
    "1.2.3.4/32",
    "a" * 300,
)
NAMESPACES = ("bad", "evil", GOOD_NAMESPACE)
HOSTILE_NAMESPACES = (
    "",
    "default",
    "kube-system",
    "Good",
    "good ",
    "good\x00",
    "bad/evil",
    "*",
    "a" * 300,
    "ǵood",
)
NAMES = ("root", "blog", "app", "web", "tls", "x")
HOSTILE_NAMES = ("", GOOD_FQDN, "a" * 300, "x\n", "x/y", ".", "x\x00", "ROOT", "blog ")
SERVICE_NAMES = (*GOOD_SERVICES, "api", "http")
SECRET_NAMES = ("tls", "ca", "other")
SECRET_REFERENCES = ("tls", "tls", "other", "good/tls", "bad/tls")
HOSTILE_SECRET_REFERENCES = (
    "evil/other",
    "missing",
    "",
    "/",
    "/tls",
    "good/",
    "a/b/c",
    " tls",
)


def every_character(text: str) -> st.SearchStrategy[str]:
    """`text` with one control or odd character spliced in somewhere."""
    return st.tuples(
        st.sampled_from((*CONTROL_CHARACTERS, *ODD_CHARACTERS)), st.integers(0, len(text))
    ).map(lambda found: text[: found[1]] + found[0] + text[found[1] :])


def spoiled(good: Sequence[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(good).flatmap(every_character)


def hostile_text(good: Sequence[str], hostile: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """A hostile string: a good one spoiled, a known-bad one, or anything at all."""
    choices = [spoiled(good), st.text(max_size=16)]
    if hostile:
        choices.insert(0, st.sampled_from(hostile))
    return st.one_of(choices)


def hostile_int() -> st.SearchStrategy[Any]:
    """Mostly an integer at or beyond a boundary; sometimes not an integer at all (most such
    objects do not parse, which is worth trying but not too often)."""
    return st.one_of(
        *[st.sampled_from(INTEGERS)] * 6,
        st.integers(),
        st.sampled_from(["80", "eighty", 80.0, 80.5, True, None, [], {}]),
    )


@dataclass(frozen=True)
class Hostility:
    """How often (in percent) a field of one object takes a hostile value."""

    percent: int

    def pick(self, draw: st.DrawFn, good: Any, hostile: Any) -> Any:
        """A value of `good` or (at this object's rate) of `hostile`: strategies or sequences.
        Hypothesis shrinks the coin towards 0, so towards good values."""
        chosen = hostile if self.coin(draw) else good
        return draw(chosen if isinstance(chosen, st.SearchStrategy) else st.sampled_from(chosen))

    def coin(self, draw: st.DrawFn) -> bool:
        """True at this object's rate: whether to spoil something that has no value pool."""
        return bool(self.percent) and draw(st.integers(0, 99)) >= 100 - self.percent

    def text(self, draw: st.DrawFn, good: Sequence[str], hostile: Sequence[str] = ()) -> str:
        return str(self.pick(draw, good, hostile_text(good, hostile)))

    def number(self, draw: st.DrawFn, good: Sequence[Any]) -> Any:
        return self.pick(draw, good, hostile_int())

    def maybe(self, draw: st.DrawFn) -> bool:
        """Whether to include an optional part: always possible, more often when hostile."""
        return bool(draw(st.integers(0, 99)) < 30 + self.percent // 2)


HOSTILITY = st.sampled_from([0, 0, 2, 5, 10, 30, 100]).map(Hostility)
"""Per object: mostly few hostile fields (so the object is used, and its bad value travels on to
Envoy), sometimes many, sometimes all."""


# --- key material ---------------------------------------------------------------------------


def _pair_for(key: Any, name: str = "bad.example.com", days: int = 30) -> certs.CertKey:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1 + max(0, -days)))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certs.CertKey(certificate.public_bytes(serialization.Encoding.PEM), key_pem)


@cache
def certificate_authority() -> certs.CertKey:
    return certs.make_ca()


@cache
def key_material() -> dict[str, tuple[bytes, bytes]]:
    """Named (tls.crt, tls.key) pairs, from valid to hopeless; made once per process."""
    valid = certs.self_signed(["bad.example.com"])
    squatter = certs.self_signed([GOOD_FQDN])
    rsa_2048 = certs.self_signed(["bad.example.com"], key_type="rsa")
    weak = _pair_for(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    p224 = _pair_for(ec.generate_private_key(ec.SECP224R1()))
    edwards = _pair_for(ed25519.Ed25519PrivateKey.generate())
    expired = _pair_for(ec.generate_private_key(ec.SECP256R1()), days=-10)
    encrypted = serialization.load_pem_private_key(valid.key_pem, password=None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    )
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    der = x509.load_pem_x509_certificate(valid.cert_pem).public_bytes(serialization.Encoding.DER)
    return {
        "valid": (valid.cert_pem, valid.key_pem),
        "good's name, another key": (squatter.cert_pem, squatter.key_pem),
        "good's certificate, another key": (good_pair().cert_pem, valid.key_pem),
        "rsa 2048": (rsa_2048.cert_pem, rsa_2048.key_pem),
        "mismatched": (valid.cert_pem, rsa_2048.key_pem),
        "rsa 1024": (weak.cert_pem, weak.key_pem),
        "p-224": (p224.cert_pem, p224.key_pem),
        "ed25519": (edwards.cert_pem, edwards.key_pem),
        "expired": (expired.cert_pem, expired.key_pem),
        "encrypted key": (valid.cert_pem, encrypted),
        "chain with a broken second": (valid.cert_pem + broken, valid.key_pem),
        "trailing garbage": (valid.cert_pem + b"\x00garbage", valid.key_pem),
        "crlf": (valid.cert_pem.replace(b"\n", b"\r\n"), valid.key_pem.replace(b"\n", b"\r\n")),
        "swapped": (valid.key_pem, valid.cert_pem),
        "der": (der, valid.key_pem),
        "key twice": (valid.cert_pem, valid.key_pem * 2),
        "empty": (b"", b""),
        "garbage": (b"garbage", b"\xff\xfe\x00garbage"),
    }
