"""An ADS client that subscribes and ACKs the way Envoy does, for the xDS benchmarks.

One `EnvoyLikeStream` is one state-of-the-world ADS stream over its own channel (one TCP
connection, as each Envoy has): it asks for clusters and listeners, then for the
ClusterLoadAssignment of every EDS cluster it was sent and for the route configurations of the
listeners, and ACKs every response with its full subscription (a SotW request that omitted the
names would unsubscribe them). With make-before-break the server sends listeners and routes only
once clusters are ACKed and their endpoints answered, so this is the minimum a client must do to
receive routes at all.

Each response's arrival time (`time.monotonic()`, CLOCK_MONOTONIC: comparable between processes
on one Linux machine) is recorded per type, so benchmarks can time a push from another process.
Cluster bodies are decoded once per CDS version per process (`EdsNames`), not once per stream,
requests are encoded from a subscription's names encoded once per process (`_names_field`), and
TLS credentials are loaded once per process: the clients share a machine with the server being
measured, and should cost it as little of that machine as an Envoy's bookkeeping would.

Benchmarks keep their streams in helper processes so the server's memory is measured alone:
`HelperProcess` is the measuring side (one command line in, one answer line out), and
`stdin_commands`, `say`, `route_marks` and `routes_since` the helper side's building blocks.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2

from controlplane.protowire import field_bytes, field_str
from controlplane.typeurls import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from controlplane.xds import TlsFiles, channel_credentials

ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    # Without it, gRPC shares one TCP connection (subchannel) among every channel of a process
    # to the same target: the streams would not cost what an Envoy's costs.
    ("grpc.use_local_subchannel_pool", 1),
]


_REQUEST_VERSION, _REQUEST_NODE, _REQUEST_NAMES, _REQUEST_TYPE_URL, _REQUEST_NONCE = 1, 2, 3, 4, 5
_encoded_names: dict[int, tuple[Sequence[str], bytes]] = {}
_credentials: dict[TlsFiles, tuple[grpc.ChannelCredentials, list[tuple[str, str]]]] = {}


def _names_field(names: Sequence[str]) -> bytes:
    """``DiscoveryRequest.resource_names`` for ``names``, encoded once per names object."""
    known = _encoded_names.get(id(names))
    if known is not None and known[0] is names:
        return known[1]
    encoded = b"".join(field_str(_REQUEST_NAMES, name) for name in names)
    if len(_encoded_names) > 64:
        _encoded_names.clear()
    _encoded_names[id(names)] = (names, encoded)  # the entry keeps ``names`` (and its id) alive
    return encoded


def _credentials_for(tls: TlsFiles) -> tuple[grpc.ChannelCredentials, list[tuple[str, str]]]:
    if tls not in _credentials:
        _credentials[tls] = channel_credentials(tls)
    return _credentials[tls]


def _as_bytes(request: bytes) -> bytes:
    return request


class EdsNames:
    """EDS service names of a CDS response, decoded once per version and shared by streams."""

    def __init__(self) -> None:
        self._by_version: dict[str, tuple[str, ...]] = {}

    def of(self, response: discovery_pb2.DiscoveryResponse) -> tuple[str, ...]:
        names = self._by_version.get(response.version_info)
        if names is None:
            found = []
            for any_message in response.resources:
                cluster = cluster_pb2.Cluster.FromString(any_message.value)
                if cluster.type == cluster_pb2.Cluster.EDS:
                    found.append(cluster.eds_cluster_config.service_name or cluster.name)
            names = self._by_version[response.version_info] = tuple(sorted(found))
        return names


@dataclass
class Arrival:
    version: str
    resources: int
    at: float


@dataclass
class EnvoyLikeStream:
    """One ADS stream; `await start()` opens it, `converged` is set once routes arrived."""

    target: str
    node_id: str
    eds_names: EdsNames
    route_names: Sequence[str] = ("ingress_http",)
    eds_only: Sequence[str] | None = None
    """If set, subscribe only these EDS names (no CDS/LDS/RDS): the EDS fast-path probe."""
    cds_lds_only: bool = False
    """Ask for CDS and LDS and ACK them, nothing else; `converged` is set on the first CDS."""
    tls: TlsFiles | None = None
    """Mutual TLS with these files (an Envoy of the split deployment); plaintext without."""
    on_response: Callable[[str, Arrival], None] | None = None
    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)
    converged: asyncio.Event = field(default_factory=asyncio.Event)
    _channel: grpc.aio.Channel | None = None
    _call: grpc.aio.StreamStreamCall | None = None
    _task: asyncio.Task[None] | None = None
    _eds: tuple[str, ...] = ()
    _rds_subscribed: bool = False

    async def start(self) -> None:
        if self.tls is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)
        else:
            credentials, options = _credentials_for(self.tls)
            self._channel = grpc.aio.secure_channel(
                self.target, credentials, options=[*CHANNEL_OPTIONS, *options]
            )
        method = self._channel.stream_stream(
            ADS_METHOD,
            request_serializer=_as_bytes,
            response_deserializer=discovery_pb2.DiscoveryResponse.FromString,
        )
        self._call = method()
        node = base_pb2.Node(id=self.node_id, cluster="bench")
        if self.eds_only is not None:
            self._eds = tuple(self.eds_only)
            await self._write(ENDPOINT_TYPE, self._eds, node=node)
        else:
            await self._write(CLUSTER_TYPE, (), node=node)
            await self._write(LISTENER_TYPE, ())
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._channel is not None:
            await self._channel.close(grace=None)

    def last(self, type_url: str) -> Arrival | None:
        seen = self.arrivals.get(type_url)
        return seen[-1] if seen else None

    async def _write(
        self,
        type_url: str,
        names: Sequence[str],
        *,
        ack: discovery_pb2.DiscoveryResponse | None = None,
        node: base_pb2.Node | None = None,
    ) -> None:
        assert self._call is not None
        request = [
            field_str(_REQUEST_VERSION, ack.version_info) if ack is not None else b"",
            field_bytes(_REQUEST_NODE, node.SerializeToString()) if node is not None else b"",
            _names_field(names),
            field_str(_REQUEST_TYPE_URL, type_url),
            field_str(_REQUEST_NONCE, ack.nonce) if ack is not None else b"",
        ]
        await self._call.write(b"".join(request))

    async def _run(self) -> None:
        assert self._call is not None
        while True:
            response = await self._call.read()
            if response is grpc.aio.EOF:
                return
            arrival = Arrival(response.version_info, len(response.resources), time.monotonic())
            type_url = response.type_url
            self.arrivals.setdefault(type_url, []).append(arrival)
            if type_url == CLUSTER_TYPE:
                await self._write(CLUSTER_TYPE, (), ack=response)
                if self.cds_lds_only:
                    self.converged.set()
                    continue
                eds = self.eds_names.of(response)
                if eds != self._eds:
                    self._eds = eds
                    await self._write(ENDPOINT_TYPE, eds)
            elif type_url == ENDPOINT_TYPE:
                await self._write(ENDPOINT_TYPE, self._eds, ack=response)
            elif type_url == LISTENER_TYPE:
                await self._write(LISTENER_TYPE, (), ack=response)
                if not self._rds_subscribed:
                    self._rds_subscribed = True
                    await self._write(ROUTE_TYPE, self.route_names)
            elif type_url == ROUTE_TYPE:
                await self._write(ROUTE_TYPE, self.route_names, ack=response)
                self.converged.set()
            if self.eds_only is not None and type_url == ENDPOINT_TYPE:
                self.converged.set()
            if self.on_response is not None:
                self.on_response(type_url, arrival)


async def open_streams(
    target: str,
    count: int,
    *,
    batch: int = 250,
    timeout_s: float = 120,
    prefix: str = "bench",
    eds_names: EdsNames | None = None,
    cds_lds_only: bool = False,
    tls: TlsFiles | None = None,
) -> list[EnvoyLikeStream]:
    """Open `count` streams, `batch` at a time, each waiting until it converged."""
    names = eds_names if eds_names is not None else EdsNames()
    streams: list[EnvoyLikeStream] = []
    for first in range(0, count, batch):
        group = [
            EnvoyLikeStream(target, f"{prefix}-{index}", names, cds_lds_only=cds_lds_only, tls=tls)
            for index in range(first, min(count, first + batch))
        ]
        for stream in group:
            await stream.start()
        await asyncio.wait_for(
            asyncio.gather(*(stream.converged.wait() for stream in group)), timeout_s
        )
        streams.extend(group)
    return streams


# -- helper processes holding streams -----------------------------------------------------------


class HelperProcess:
    """One helper process (``python -m MODULE ARGS...``) answering one line per command line."""

    def __init__(
        self, process: asyncio.subprocess.Process, *, ask_timeout_s: float, quit_timeout_s: float
    ) -> None:
        self.process = process
        self.ask_timeout_s = ask_timeout_s
        self.quit_timeout_s = quit_timeout_s

    @classmethod
    async def spawn(
        cls, module: str, *args: str, ask_timeout_s: float, quit_timeout_s: float
    ) -> HelperProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process, ask_timeout_s=ask_timeout_s, quit_timeout_s=quit_timeout_s)

    async def ask(self, command: str) -> list[str]:
        """Send ``command``; the words of the helper's answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), self.ask_timeout_s)
        if not line:
            raise RuntimeError(f"client exited while answering {command!r}")
        return line.decode().split()

    async def quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"quit\n")
        await self.process.stdin.drain()
        await asyncio.wait_for(self.process.wait(), self.quit_timeout_s)


async def stdin_commands() -> AsyncIterator[list[str]]:
    """The helper side: the words of each command line on stdin, until an empty line or EOF."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        yield line


def say(*words: object) -> None:
    """The helper side: one answer line on stdout."""
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def route_marks(streams: Sequence[EnvoyLikeStream]) -> dict[int, int]:
    """How many route configurations each stream (by ``id``) has received so far."""
    return {id(s): len(s.arrivals.get(ROUTE_TYPE, ())) for s in streams}


async def routes_since(
    streams: Sequence[EnvoyLikeStream], marks: dict[int, int], timeout_s: float
) -> tuple[list[EnvoyLikeStream], float]:
    """Wait up to ``timeout_s`` for every stream to receive a route configuration after
    ``marks``: the streams that did and the last of their latest arrivals (0.0 for none)."""
    deadline = time.monotonic() + timeout_s
    fresh: list[EnvoyLikeStream] = []
    while time.monotonic() < deadline:
        fresh = [s for s in streams if len(s.arrivals.get(ROUTE_TYPE, ())) > marks[id(s)]]
        if len(fresh) == len(streams):
            break
        await asyncio.sleep(0.01)
    last = max((s.arrivals[ROUTE_TYPE][-1].at for s in fresh), default=0.0)
    return fresh, last
