"""The command line as a user meets it, through subprocess runs of the real `controlplane`.

Every mistake a user can make is one line on stderr (`controlplane COMMAND: ...`), exit code 2
when the command line is wrong and 1 when the command could not do its job, and nothing on
stdout; argparse's own errors show the usage of the subcommand at fault. The table runs every
row at once (each is a separate process) and each test asserts one row.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from controlplane.cli import redact_secrets, version_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# base64 of "-----BEGIN PRIVATE KEY-----", how a PEM key starts inside `inline_bytes`
KEY_PREFIX = base64.b64encode(b"-----BEGIN PRIVATE KEY-----").decode()[:30]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def run(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, cwd: Path = ROOT
) -> Result:
    completed = subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


@dataclass(frozen=True)
class Mistake:
    """A command line that must fail: exit `code`, the last stderr line matching `says`, and
    (argparse errors) the usage of `usage` first."""

    args: tuple[str, ...]
    code: int
    says: str
    usage: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Fixtures:
    taken_port: int
    kubeconfig: Path
    broken_yaml: Path
    config: Path
    examples: Path  # one backend, on the taken port


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixtures]:
    tmp = tmp_path_factory.mktemp("cli")
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    broken = tmp / "broken.yaml"
    broken.write_text("a: [\n")
    config = tmp / "config.yaml"
    config.write_text("retry_period: soon\nbogus: 1\n")
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        examples = tmp / "examples"
        examples.mkdir()
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": ["127.0.0.1"]}],
        }  # fmt: skip
        (examples / "web.yaml").write_text(yaml.safe_dump(slice_))
        yield Fixtures(port, kubeconfig, broken, config, examples)


def mistakes(f: Fixtures) -> dict[str, Mistake]:
    taken = f"127.0.0.1:{f.taken_port}"
    kc, files = str(f.kubeconfig), str(EXAMPLES)
    return {
        "a word for a number": Mistake(
            ("serve", "--lease-duration", "abc"), 2,
            r"controlplane serve: error: argument --lease-duration: invalid float value: 'abc'",
            usage="serve",
        ),
        "a misspelt serve flag": Mistake(
            ("serve", "--manifest", files), 2,
            r"controlplane serve: error: unrecognized arguments: --manifest .*", usage="serve",
        ),
        "a log level that does not exist": Mistake(
            ("serve", "--log-level", "verbose"), 2,
            r"controlplane serve: error: argument --log-level: invalid choice: 'verbose' .*",
            usage="serve",
        ),
        "a misspelt command": Mistake(
            ("serv",), 2, r"controlplane: error: argument COMMAND: invalid choice: 'serv' .*",
            usage="",
        ),
        "no source": Mistake(
            ("serve",), 2,
            r"controlplane serve: give --manifests DIR or --kubeconfig PATH \(not in a pod.*",
            env={"KUBERNETES_SERVICE_HOST": ""},
        ),
        "a manifests directory that is not there": Mistake(
            ("serve", "--manifests", "/nonexistent"), 2,
            r"controlplane serve: --manifests /nonexistent: not a directory",
        ),
        "a kubeconfig that is not there": Mistake(
            ("serve", "--kubeconfig", "/nonexistent"), 2,
            r"controlplane serve: --kubeconfig /nonexistent: no such file",
        ),
        "a lease shorter than its renew deadline": Mistake(
            ("serve", "--kubeconfig", kc, "--lease-duration", "5"), 2,
            r"controlplane serve: leader election needs --lease-duration \(5\) > "
            r"--renew-deadline \(10\) > --retry-period \(2\) > 0",
        ),
        "a config file that is not there": Mistake(
            ("serve", "--config", "/nonexistent.yaml", "--manifests", files), 2,
            r"controlplane serve: --config /nonexistent.yaml: no such file",
        ),
        "a config file with a bad value and an unknown key": Mistake(
            ("serve", "--config", str(f.config), "--manifests", files), 2,
            rf"controlplane serve: --config {re.escape(str(f.config))}: unknown key bogus: "
            r"neither a setting of controlplane serve \(see --help\) nor a Contour config-file key",
        ),
        "a config file that is not YAML": Mistake(
            ("serve", "--config", str(f.broken_yaml), "--manifests", files), 2,
            rf"controlplane serve: --config {re.escape(str(f.broken_yaml))}: "
            r"not YAML: while parsing .*",
        ),
        "a bad value in the environment": Mistake(
            ("serve", "--manifests", files), 2,
            r"controlplane serve: CONTROLPLANE_LEASE_DURATION='abc': Input should be a valid "
            r"number, unable to parse string as a number",
            env={"CONTROLPLANE_LEASE_DURATION": "abc"},
        ),
        "a taken xDS port": Mistake(
            ("serve", "--manifests", files, "--xds-address", taken), 1,
            rf"controlplane serve: --xds-address {taken}: Address already in use",
        ),
        "a taken health port": Mistake(
            ("serve", "--manifests", files, "--xds-address", "127.0.0.1:0",
             "--health-address", taken), 1,
            rf"controlplane serve: --health-address {taken}: Address already in use",
        ),
        "an address without a port": Mistake(
            ("serve", "--manifests", files, "--xds-address", "127.0.0.1"), 2,
            r"controlplane serve: --xds-address 127.0.0.1: expected HOST:PORT",
        ),
        "a manifest that is not there": Mistake(
            ("translate", "-f", "/nonexistent.yaml"), 2,
            r"controlplane translate: -f /nonexistent.yaml: no such file or directory",
        ),
        "a manifest that is not YAML": Mistake(
            ("translate", "-f", str(f.broken_yaml)), 1,
            r"controlplane translate: while parsing a flow node .* in "
            rf"\"{re.escape(str(f.broken_yaml))}\", line 2, column 1",
        ),
        "an output format that does not exist": Mistake(
            ("translate", "-f", files, "-o", "xml"), 2,
            r"controlplane translate: error: argument -o/--output: invalid choice: 'xml' .*",
            usage="translate",
        ),
        "a controller that is not there": Mistake(
            ("xds", "--xds-address", taken.replace(str(f.taken_port), "1")), 1,
            r"controlplane xds: cannot reach the controller at 127.0.0.1:1 \(.*Connection "
            r"refused\); is it running\?",
        ),
        "a timeout of nothing": Mistake(
            ("xds", "--timeout", "0"), 2,
            r"controlplane xds: error: argument --timeout: invalid positive number value: '0'",
            usage="xds",
        ),
        "a taken demo port": Mistake(
            ("demo", "--files", "--http-port", str(f.taken_port)), 1,
            rf"controlplane demo: --http-port {f.taken_port}: address already in use; stop what "
            rf"listens there, pick another port, or leave --http-port out to use a free one",
        ),
        "a demo port twice": Mistake(
            ("demo", "--files", "--http-port", "18080", "--xds-port", "18080"), 1,
            r"controlplane demo: --xds-port 18080: that port is already used by the demo itself",
        ),
        "an examples directory that is not there": Mistake(
            ("demo", "--examples", "/nonexistent"), 2,
            r"controlplane demo: --examples /nonexistent: not a directory",
        ),
        "a taken backend port": Mistake(
            ("demo", "--files", "--examples", str(f.examples)), 1,
            rf"controlplane demo: backend default/web cannot listen on 127.0.0.1:{f.taken_port} "
            r"\(address already in use\); the examples' EndpointSlices name that port: stop "
            r"what listens there",
        ),
        "a taken test API server port": Mistake(
            ("testapi", "--listen", taken), 1,
            rf"controlplane testapi: --listen {taken}: Address already in use",
        ),
        "a test API server address without a port": Mistake(
            ("testapi", "--listen", "localhost"), 2,
            r"controlplane testapi: --listen localhost: expected HOST:PORT",
        ),
        "a bootstrap admin on the network": Mistake(
            ("bootstrap", "/dev/null", "--admin-address", "0.0.0.0:9001"), 2,
            r"controlplane bootstrap: admin address '0.0.0.0:9001' .*",
        ),
    }  # fmt: skip


NAMES = list(mistakes(Fixtures(1, Path("k"), Path("b"), Path("c"), Path("e"))))


@pytest.fixture(scope="module")
def outcomes(fixtures: Fixtures) -> dict[str, tuple[Mistake, Result]]:
    """Every row run at once: each is its own process, mostly waiting on imports."""
    table = mistakes(fixtures)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, *m.args, env=m.env) for name, m in table.items()}
        return {name: (table[name], future.result()) for name, future in futures.items()}


@pytest.mark.parametrize("name", NAMES)
def test_a_mistake_is_one_line_on_stderr_and_a_nonzero_exit(
    name: str, outcomes: dict[str, tuple[Mistake, Result]]
) -> None:
    mistake, result = outcomes[name]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    assert result.code == mistake.code, result.stderr
    assert re.fullmatch(mistake.says, result.last_line), result.last_line
    if mistake.usage is None:
        assert result.stderr.count("\n") == 1, result.stderr
    else:
        prefix = f"usage: controlplane {mistake.usage}".rstrip()
        assert result.stderr.startswith(prefix + " "), result.stderr


def test_version_names_the_package_and_the_envoy_api() -> None:
    result = run("--version")
    assert result.code == 0
    assert re.fullmatch(r"controlplane \d+\.\d+\.\S+ \(Envoy xDS API v3, xds-protos \S+, .*\)\n",
                        result.stdout)  # fmt: skip
    assert result.stdout.strip() == version_text()


def test_debug_adds_the_traceback_to_the_same_message(fixtures: Fixtures) -> None:
    plain = run("translate", "-f", str(fixtures.broken_yaml))
    debug = run("--debug", "translate", "-f", str(fixtures.broken_yaml))
    after = run("translate", "-f", str(fixtures.broken_yaml), "--debug")
    assert "Traceback" not in plain.stderr
    for result in (debug, after):
        assert result.code == plain.code == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert "yaml.parser.ParserError" in result.stderr  # the cause, not only our wrapper
        assert result.last_line == plain.last_line


def test_translate_redacts_private_keys_unless_asked(tmp_path: Path) -> None:
    default = run("translate", "-f", str(EXAMPLES))
    shown = run("translate", "-f", str(EXAMPLES), "--show-secrets")
    assert default.code == shown.code == 0
    (secret,) = json.loads(default.stdout)["secrets"]
    assert secret["tls_certificate"]["private_key"] == {"inline_string": "[redacted]"}
    assert secret["tls_certificate"]["certificate_chain"]["inline_bytes"]  # certificates are public
    assert KEY_PREFIX not in default.stdout and "PRIVATE KEY" not in default.stdout
    (full,) = json.loads(shown.stdout)["secrets"]
    key = base64.b64decode(full["tls_certificate"]["private_key"]["inline_bytes"])
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert yaml.safe_load(run("translate", "-f", str(EXAMPLES), "-o", "yaml").stdout) == (
        json.loads(default.stdout)
    )


def test_translate_reads_standard_input_and_keeps_warnings_off_stdout() -> None:
    manifests = "---\n".join(
        (EXAMPLES / "ingress" / name).read_text() for name in ("kuard.yaml", "echo.yaml",
                                                               "kuard-ingressroute.yaml")
    )  # fmt: skip
    bad_service = (
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: default}\n"
        "spec: {ports: [{port: notaport}]}\n"
    )
    result = run("translate", "-f", "-", stdin=manifests + bad_service)
    assert result.code == 0, result.stderr
    printed = json.loads(result.stdout)  # stdout is the document and nothing else
    assert printed == json.loads(run("translate", "-f", "-", stdin=manifests).stdout)
    (status,) = printed["status"]
    assert (status["name"], status["currentStatus"]) == ("kuard", "valid")
    assert "object.skipped" in result.stderr and "name=bad" in result.stderr
    assert "\x1b[" not in result.stderr  # not a terminal: no colour codes


def test_redaction_covers_every_field_that_holds_key_material() -> None:
    secret = {
        "name": "s",
        "tls_certificate": {
            "certificate_chain": {"inline_bytes": "Y2VydA=="},
            "private_key": {"inline_bytes": "a2V5"},
            "password": {"inline_string": "hunter2"},
        },
    }
    generic = {"name": "g", "generic_secret": {"secret": {"inline_string": "token"}}}
    redacted = redact_secrets({"secrets": [secret, generic], "status": [{"name": "private_key"}]})
    assert redacted == {
        "secrets": [
            {
                "name": "s",
                "tls_certificate": {
                    "certificate_chain": {"inline_bytes": "Y2VydA=="},
                    "private_key": {"inline_string": "[redacted]"},
                    "password": {"inline_string": "[redacted]"},
                },
            },
            {"name": "g", "generic_secret": {"secret": {"inline_string": "[redacted]"}}},
        ],
        "status": [{"name": "private_key"}],
    }
