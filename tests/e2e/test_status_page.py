"""The status page in a real browser, against a running controller with a real Envoy connected.

The examples are loaded (plus a tenant's broken, cyclic, orphaned and hostile objects), Envoy
connects, and Debian's `chromium` (headless) loads `/`: the DOM it holds after the page's
JavaScript ran (and refreshed itself from the JSON endpoints at least once, on virtual time) must
list every object with its status, draw every object of the delegation graph in its colour, show
the connected Envoy with its ACKed versions, and hold the hostile tenant's markup as text only.
A screenshot is saved under the test's tmp_path (`status-page.png`) for a person to look at.

`.ci/run` installs chromium when it is missing; without it the test is skipped and says so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    '<img src=x onerror="document.body.dataset.pwned=1"><script>document.title="pwned"</script>'
)

TENANT: list[dict[str, Any]] = [
    {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "loop-a", "namespace": "team"},
        "spec": {
            "virtualhost": {"fqdn": "loop.example.com"},
            "routes": [{"match": "/a", "delegate": {"name": "loop-b"}}],
        },
    },
    {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "loop-b", "namespace": "team"},
        "spec": {"routes": [{"match": "/a/b", "delegate": {"name": "loop-c"}}]},
    },
    {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "loop-c", "namespace": "team"},
        "spec": {
            "routes": [
                {"match": "/a/b/c", "delegate": {"name": "loop-b"}},
                {"match": "/a/b/d", "delegate": {"name": "ghost"}},
            ]
        },
    },
    {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "lost", "namespace": "team"},
        "spec": {"routes": [{"match": "/", "services": [{"name": "web", "port": 80}]}]},
    },
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "team"},
     "spec": {"ports": [{"port": 80}]}},
    {
        "apiVersion": "contour.heptio.com/v1beta1",
        "kind": "IngressRoute",
        "metadata": {"name": "evil", "namespace": "team"},
        "spec": {
            "virtualhost": {"fqdn": HOSTILE},
            "routes": [{"match": "/", "services": [{"name": "web", "port": 80}]}],
        },
    },
]  # fmt: skip

EXPECTED_ROWS = {
    ("IngressRoute", "blog", "blog", "valid"),
    ("IngressRoute", "default", "kuard", "valid"),
    ("IngressRoute", "platform", "www", "valid"),
    ("IngressRoute", "shop", "shop", "valid"),
    ("Ingress", "default", "echo", "valid"),
    ("Ingress", "default", "kuard", "valid"),
    ("IngressRoute", "team", "evil", "invalid"),
    ("IngressRoute", "team", "lost", "orphaned"),
    ("IngressRoute", "team", "loop-a", "valid"),
    ("IngressRoute", "team", "loop-b", "valid"),
    ("IngressRoute", "team", "loop-c", "valid"),
}
EXPECTED_NODES = {
    "platform/www": "valid",
    "blog/blog": "valid",
    "shop/shop": "valid",
    "default/kuard": "valid",
    "team/loop-a": "valid",
    "team/loop-b": "valid",
    "team/loop-c": "valid",
    "team/ghost": "missing",
    "team/lost": "orphaned",
    "team/evil": "invalid",
}


class Dom(HTMLParser):
    """The elements of a dumped DOM that the assertions read."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.rows: set[tuple[str | None, ...]] = set()
        self._row: dict[str, str | None] = {}
        self.nodes: dict[str | None, str | None] = {}
        self.back_edges: list[tuple[str | None, str | None]] = []
        self.envoys: list[str | None] = []
        self.versions: list[str] = []
        self.tags: list[str] = []
        self.title = ""
        self._in: str | None = None
        self._cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "body":
            self.body = a
        elif tag == "tr" and "data-kind" in a:
            self._in, self._row, self._cells = "row", a, []
        elif tag == "tr" and "data-node" in a:
            self.envoys.append(a["data-node"])
        elif tag == "td" and self._in == "row":
            self._cells.append("")
        elif tag == "g" and "node" in (a.get("class") or "").split():
            self.nodes[a["data-key"]] = a["data-status"]
        elif tag == "g" and "back" in (a.get("class") or "").split():
            self.back_edges.append((a["data-source"], a["data-target"]))
        elif tag == "span" and "version" in (a.get("class") or "").split():
            self._in = "version"
        elif tag == "title" and not self.title:
            self._in = "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._in == "row":
            row = self._row
            self.rows.add(
                (row["data-kind"], row["data-namespace"], self._cells[2], row["data-status"])
            )
            self._in = None
        elif tag in ("span", "title") and self._in in ("version", "title"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "row" and self._cells:
            self._cells[-1] += data
        elif self._in == "version":
            self.versions.append(data)
        elif self._in == "title":
            self.title += data


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (`.ci/run` installs it: apt-get install chromium)")
    return found


async def browse(url: str, profile: Path, *action: str) -> bytes:
    """Run headless chromium on `url` with `action` (--dump-dom or --screenshot=PATH)."""
    process = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",  # root in CI containers; the page is our own
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1500",
        "--virtual-time-budget=9000",  # the page's refresh timer fires; no real waiting
        *action,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout


async def wait_for_envoy(rig: Pipeline) -> None:
    url = f"http://127.0.0.1:{rig.health_port}/api/envoys"
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            async with session.get(url) as answer:
                envoys = (await answer.json())["envoys"]
            if envoys and {t["type"] for t in envoys[0]["types"]} >= {"cds", "lds", "rds"}:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"no Envoy ACKed its configuration: {envoys}")


@pytest.mark.e2e
async def test_the_status_page_in_a_browser(tmp_path: Path, envoy_binary: str) -> None:
    chromium()
    manifests = tmp_path / "manifests"
    for example in ("ingressroute", "ingress"):
        shutil.copytree(ROOT / "examples" / example, manifests / example)
    (manifests / "tenant.yaml").write_text(yaml.safe_dump_all(TENANT), encoding="utf-8")
    async with Pipeline(manifests) as rig:
        await wait_for_envoy(rig)
        base = f"http://127.0.0.1:{rig.health_port}"
        async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as answer:
            assert "controlplane_xds_connected_envoys 1.0" in await answer.text()

        dom = Dom()
        dom.feed((await browse(f"{base}/", tmp_path / "profile", "--dump-dom")).decode())
        assert dom.body.get("data-ready") == "1", "the page's script did not run"
        assert int(dom.body.get("data-refreshed") or 0) >= 1, "no refresh from /api/*"
        assert "data-pwned" not in dom.body and dom.title == "controlplane status"
        assert dom.rows == EXPECTED_ROWS
        assert dom.nodes == EXPECTED_NODES
        assert dom.back_edges == [("team/loop-c", "team/loop-b")]
        assert dom.envoys == ["envoy"]
        assert {v.split()[0] for v in dom.versions} >= {"cds", "eds", "sds", "lds", "rds"}
        assert "img" not in dom.tags and dom.tags.count("script") == 1

        narrowed = Dom()
        page = await browse(f"{base}/?namespace=team", tmp_path / "profile", "--dump-dom")
        narrowed.feed(page.decode())
        assert {row[1] for row in narrowed.rows} == {"team"}
        assert set(narrowed.nodes) == {k for k in EXPECTED_NODES if k.startswith("team/")}

        shot = tmp_path / "status-page.png"
        await browse(f"{base}/", tmp_path / "profile", f"--screenshot={shot}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
