"""Annotation values as ingress-nginx users write them, checked before anything reaches Envoy.

Each parser takes the raw annotation text and returns either the value in the DAG's terms or a
phrase saying why the text is refused (`Refused`); the caller turns the phrase into a `Problem`
naming the annotation and the fallback. Nothing here raises on any input, and no value that
passes leaves room for Envoy to reject the configuration: sizes and counts fit Envoy's integer
fields, durations its `Duration`, every regular expression compiles with RE2 within Envoy's
program-size limit (`regexes.re2_problem`), every URL part is free of control characters and
whitespace, and the texts that become header values or cookie attributes are tokens.

nginx syntaxes followed here:
- booleans as Go's `strconv.ParseBool` reads them (`true`, `True`, `1`, `f`, ...), as
  ingress-nginx does;
- seconds as a bare integer (what ingress-nginx documents) or nginx time units (`90s`, `1m`,
  `1h 30m`, `500ms`);
- sizes as nginx's `client_max_body_size` reads them: bytes, or a `k`, `m`, `g` suffix (either
  case); `0` means "no limit";
- CIDR lists comma-separated; a bare address is a /32 (or /128); host bits are cleared as Go's
  `net.ParseCIDR` reads the network.

Regular expressions (`use-regex`, `rewrite-target`): nginx matches a location regex at the start
of the path, case-insensitively (`location ~* "^PATH"`). Envoy's `safe_regex` must match the
whole path, so the pattern becomes `(?i)(?:PATH).*`; the group keeps a top-level `|` inside the
prefix and takes no capture group number. nginx's `rewrite "(?i)PATH" TARGET break;` replaces the
whole URI with TARGET, `$1`...`$9` naming the capture groups; Envoy's `regex_rewrite` replaces
each match of its pattern, so the pattern is anchored and swallows the rest of the path
(`(?i)^(?:PATH).*`) and TARGET is rewritten with `\\1` for `$1`. A `$N` beyond the groups of
PATH is empty in nginx, and is dropped here likewise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from urllib.parse import urlsplit

import re2

from controlplane.dag.regexes import re2_problem
from controlplane.dag.types import REDIRECT_CODES, Redirect
from controlplane.model import shown

__all__ = [
    "MAX_UINT32",
    "Refused",
    "cidr_list",
    "cookie_name",
    "cors_list",
    "cors_origins",
    "header_name",
    "nginx_bool",
    "nginx_seconds",
    "nginx_size",
    "path_pattern",
    "pattern_groups",
    "positive_int",
    "redirect_code",
    "redirect_to",
    "rewrite_substitution",
    "upstream_host",
]

MAX_UINT32 = 2**32 - 1
MAX_SECONDS = 9_223_372_035
"""Envoy's largest `Duration` in seconds (see `durations.py`)."""
MAX_TEXT = 4096
"""Longer annotation values are refused before any parsing (a 10 kB value costs nothing)."""
MAX_LIST = 16384
"""Lists (CIDRs, origins) may be longer; past this they are refused whole."""


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a value is refused: a phrase that follows the quoted value in a Problem."""

    reason: str


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_TIME_PART = re.compile(r"\s*([0-9]{1,12})(ms|s|m|h|d|w|M|y)?\s*")
_TIME_UNITS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "M": 2592000.0,
    "y": 31536000.0,
}
_SIZE = re.compile(r"([0-9]{1,20})([kKmMgG]?)")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DIGITS = re.compile(r"[0-9]{1,20}")
_LABEL = r"[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_ORIGIN = re.compile(rf"(https?)://((?:\*\.)?{_LABEL}(?:\.{_LABEL})*)(?::([0-9]{{1,5}}))?")
_CORS_METHODS = re.compile(r"[A-Za-z]+")
_CORS_HEADERS = re.compile(r"[A-Za-z0-9_-]+")
_CORS_EXPOSE = re.compile(r"[A-Za-z0-9_*-]+")
_GROUP_REFERENCE = re.compile(r"\$(?:([0-9])|\{([0-9])\})")
REQUEST_URI = "$request_uri"


def _too_long(raw: str) -> Refused | None:
    if len(raw) > MAX_TEXT:
        return Refused(f"is {len(raw)} characters long (at most {MAX_TEXT})")
    return None


def nginx_bool(raw: str) -> bool | Refused:
    value = raw.strip()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return Refused('is neither "true" nor "false"')


def nginx_seconds(raw: str, *, allow_zero: bool = False) -> float | Refused:
    """Seconds: `60`, or nginx time units (`90s`, `1m 30s`, `500ms`)."""
    if (long := _too_long(raw)) is not None:
        return long
    text = raw.strip()
    position, total = 0, 0.0
    for match in _TIME_PART.finditer(text):
        if match.start() != position:
            break
        total += int(match.group(1)) * _TIME_UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        return Refused("is not a number of seconds (examples: 60, 90s, 1m, 500ms)")
    if total > MAX_SECONDS:
        return Refused(f"is too long a time (at most {MAX_SECONDS} s)")
    if total == 0 and not allow_zero:
        return Refused("is zero")
    return total


def nginx_size(raw: str) -> int | Refused | None:
    """Bytes (`8m`, `512k`, `1048576`); None for `0` (no limit)."""
    text = raw.strip()
    match = _SIZE.fullmatch(text)
    if match is None:
        return Refused("is not a size (examples: 8m, 512k, 1g, 0 for no limit)")
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if size == 0:
        return None
    if size > MAX_UINT32:
        return Refused(f"is more than Envoy can enforce ({MAX_UINT32} bytes)")
    return size


def positive_int(raw: str, maximum: int = MAX_UINT32, *, allow_zero: bool = False) -> int | Refused:
    text = raw.strip()
    if not _DIGITS.fullmatch(text):
        return Refused("is not a whole number")
    value = int(text)
    if value > maximum:
        return Refused(f"is more than {maximum}")
    if value == 0 and not allow_zero:
        return Refused("is zero")
    return value


def cidr_list(raw: str) -> tuple[tuple[str, ...], list[Refused]]:
    """The networks of a comma-separated list (normalized, unique, in order), and why each
    entry that is not one was refused."""
    if len(raw) > MAX_LIST:
        return (), [Refused(f"is {len(raw)} characters long (at most {MAX_LIST})")]
    networks: dict[str, None] = {}
    refused: list[Refused] = []
    for item in raw.split(","):
        entry = item.strip()
        if not entry:
            continue
        try:
            network = ip_network(entry, strict=False)
        except ValueError:
            refused.append(Refused(f'lists "{shown(entry)}", which is not an address or CIDR'))
            continue
        networks.setdefault(str(network))
    return tuple(networks), refused


def cors_origins(raw: str) -> tuple[tuple[str, ...], list[Refused]]:
    """Exact origins (`https://a.example`, `http://a.example:8080`) or `*`; wildcard subdomains
    (`https://*.a.example`) are refused: Envoy's CORS policy matches origins exactly here."""
    origins: dict[str, None] = {}
    refused: list[Refused] = []
    if len(raw) > MAX_LIST:
        return (), [Refused(f"is {len(raw)} characters long (at most {MAX_LIST})")]
    for item in raw.split(","):
        entry = item.strip()
        if not entry:
            continue
        if entry == "*":
            origins.setdefault("*")
            continue
        match = _ORIGIN.fullmatch(entry)
        if match is None or (match.group(3) is not None and not 1 <= int(match.group(3)) <= 65535):
            refused.append(
                Refused(f'lists "{shown(entry)}", which is not an origin (http(s)://host[:port])')
            )
            continue
        if match.group(2).startswith("*."):
            refused.append(Refused(f'lists "{shown(entry)}": wildcard origins are not supported'))
            continue
        origins.setdefault(entry.lower())
    return tuple(origins), refused


def cors_list(raw: str, kind: str) -> str | Refused:
    """`cors-allow-methods` (letters), `-allow-headers` (letters, digits, `_`, `-`) and
    `-expose-headers` (also `*`): normalized to `A, B`."""
    pattern = {"methods": _CORS_METHODS, "headers": _CORS_HEADERS, "expose": _CORS_EXPOSE}[kind]
    if (long := _too_long(raw)) is not None:
        return long
    items = [item.strip() for item in raw.split(",") if item.strip()]
    bad = [item for item in items if not pattern.fullmatch(item)]
    if bad:
        return Refused(f'lists "{shown(bad[0])}", which is not a {kind[:-1]} name')
    if not items:
        return Refused("lists nothing")
    return ", ".join(items)


def header_name(raw: str) -> str | Refused:
    name = raw.strip()
    if not _TOKEN.fullmatch(name):
        return Refused("is not an HTTP header name")
    return name.lower()


def cookie_name(raw: str) -> str | Refused:
    name = raw.strip()
    if not _TOKEN.fullmatch(name):
        return Refused("is not a cookie name")
    return name


def upstream_host(raw: str) -> str | Refused:
    """A `Host` header value: a DNS name or IP, optionally with a port; no nginx variables."""
    text = raw.strip()
    if "$" in text:
        return Refused("uses an nginx variable, which Envoy cannot expand")
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if port and (not _DIGITS.fullmatch(port) or not 1 <= int(port) <= 65535):
        return Refused("has a port that is not a number in the range 1-65535")
    name = host.strip("[]")
    if len(text) > 255 or not (_HOSTNAME.fullmatch(name) or _is_ip(name)):
        return Refused("is not a host name (or address), with an optional port")
    return text


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def redirect_to(raw: str, code: int) -> Redirect | Refused:
    """The redirect to an absolute http(s) URL, as nginx's `return CODE URL` sends it: the
    URL's path and query replace the request's, unless the URL ends in `$request_uri` (the
    one nginx variable understood here), which keeps the request's path and query."""
    if (long := _too_long(raw)) is not None:
        return long
    text = raw.strip()
    if _SPACE_OR_CONTROL.search(text):
        return Refused("holds whitespace or control characters")
    keep_request = text.endswith(REQUEST_URI)
    if keep_request:
        text = text[: -len(REQUEST_URI)]
    if "$" in text:
        return Refused(f"uses an nginx variable other than a final {REQUEST_URI}")
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError:
        return Refused("is not a URL")
    if url.scheme.lower() not in ("http", "https"):
        return Refused("is not an http:// or https:// URL")
    host = url.hostname or ""
    if not host or not (_HOSTNAME.fullmatch(host) or _is_ip(host)) or url.username is not None:
        return Refused("has no valid host")
    if url.fragment:
        return Refused("has a fragment (#...), which a redirect cannot carry here")
    scheme = url.scheme.lower()
    if keep_request:
        if url.path or url.query:
            return Refused(f"has a path or query before {REQUEST_URI}")
        path = None
    else:
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        if not path.startswith("/"):
            return Refused("has a path that does not start with /")
    return Redirect(
        code=code,
        scheme=scheme,
        host=host.lower(),
        port=port,  # none written: the Host Envoy saw has no port (strip_any_host_port)
        path=path,
        strip_query=not keep_request,
    )


def redirect_code(raw: str, default: int) -> int | Refused:
    value = positive_int(raw, 999)
    if isinstance(value, Refused):
        return value
    if value not in REDIRECT_CODES:
        codes = ", ".join(str(code) for code in sorted(REDIRECT_CODES))
        return Refused(f"is not a redirect status Envoy can send ({codes})")
    return value


def path_pattern(path: str) -> tuple[str, str] | Refused:
    """The (match, rewrite) RE2 patterns of an nginx regex location `~* "^PATH"`."""
    if (long := _too_long(path)) is not None:
        return long
    match, rewrite = f"(?i)(?:{path}).*", f"(?i)^(?:{path}).*"
    for pattern in (match, rewrite):
        problem = re2_problem(pattern)
        if problem is not None:
            return Refused(f"as an nginx regex location: the pattern {problem}")
    return match, rewrite


def rewrite_substitution(target: str, groups: int) -> str | Refused:
    """Envoy's substitution for an nginx rewrite TARGET (`/$2` → `/\\2`)."""
    if (long := _too_long(target)) is not None:
        return long
    text = target.strip()
    if _SPACE_OR_CONTROL.search(text):
        return Refused("holds whitespace or control characters")
    if "?" in text or "#" in text:
        return Refused("holds a query or fragment; only a path can be rewritten here")
    if not (text.startswith("/") or _GROUP_REFERENCE.match(text)):
        return Refused("is not a path (it must start with / or a capture group such as $1)")
    if "$" in _GROUP_REFERENCE.sub("", text):
        return Refused("uses an nginx variable; only capture groups ($1 to $9) are understood")
    parts: list[str] = []
    position = 0
    for reference in _GROUP_REFERENCE.finditer(text):
        parts.append(text[position : reference.start()].replace("\\", "\\\\"))
        number = int(reference.group(1) or reference.group(2))
        if number <= groups:
            parts.append(f"\\{number}")
        position = reference.end()
    parts.append(text[position:].replace("\\", "\\\\"))
    return "".join(parts)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def pattern_groups(pattern: str) -> int:
    """The number of capture groups of a pattern `re2_problem` accepted."""
    groups: int = re2.compile(pattern, _RE2_OPTIONS).groups
    return groups
