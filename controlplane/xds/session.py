"""One xDS stream on the wire: a reader task, a writer loop, and the state machine between them.

The reader turns each request into state-machine input, reports NACKs (and ACKs) to the cache
and keeps the cache's watch index in step with the stream's subscriptions. The writer sleeps until
something may need sending (a request arrived, or the cache reported a change this stream
watches), then pulls responses from the state machine until it has none. Nothing is queued: a
response is computed from the newest snapshot when the writer is free, so a slow Envoy skips
versions instead of delaying anyone or growing a backlog.

A write that does not complete within ``write_timeout`` seconds means the client has stopped
reading (HTTP/2 flow control holds the write). The session then gives the stream up: it stops
watching the cache and reading, and parks the handler until gRPC ends the call, so at most one
response (the stuck one) stays allocated. grpc.aio offers no way to end a server call whose
message is still pending (``abort`` or returning fail with TOO_MANY_OPERATIONS), so the stream
itself ends with its connection: at ``max_connection_age`` plus its grace, or when keepalive
pings go unanswered (a frozen Envoy).

Per-stream memory is kept to what the stream needs (ARCHITECTURE §4; thousands of streams share
one process): no task or event per wait, just a future while the writer sleeps; the request
being handled is dropped before the next is awaited (a parsed request keeps its whole buffer
alive, a 1,000-name EDS ACK tens of KB); subscriptions are the cache's shared ones.

Nothing is written before the cache is ready: a stream that arrives earlier has its requests
recorded and is answered once the first snapshot is published.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

import structlog

from controlplane.typeurls import TYPE_NAMES
from controlplane.xds.cache import SnapshotCache
from controlplane.xds.stream import Framing, Outgoing, RequestResult, StreamState

__all__ = ["Session"]


class Session:
    """Drives one stream; also the :class:`~controlplane.xds.cache.Watcher` the cache wakes."""

    def __init__(
        self,
        cache: SnapshotCache,
        *,
        stream_id: int,
        framing: Framing,
        types: Collection[str],
        make_before_break: bool,
        write_timeout: float,
        control_plane: str,
    ) -> None:
        self._cache = cache
        self._write_timeout = write_timeout
        self.state = StreamState(
            framing,
            types=types,
            make_before_break=make_before_break,
            control_plane=control_plane,
            subscriptions=cache.subscriptions,
        )
        # Something may need sending; ``_waiter`` exists only while the writer sleeps.
        self._pending = False
        self.handled = 0
        """Requests handled so far (tests wait on it instead of sleeping)."""
        self.sent = 0
        """Responses written so far."""
        self.metadata: dict[str, str] = {}
        """The call's metadata (gRPC headers), as the client sent them."""
        self._awaiting_snapshot = False
        self._waiter: asyncio.Future[None] | None = None
        self._log: Any = structlog.get_logger("controlplane.xds").bind(
            stream_id=stream_id, framing=framing.value
        )

    @property
    def idle(self) -> bool:
        """The writer sleeps with nothing to look at (or waits for the first snapshot):
        everything handled so far is answered."""
        return self._awaiting_snapshot or (self._waiter is not None and not self._pending)

    def notify(self, type_url: str, names: frozenset[str]) -> None:
        self.state.notify(type_url, names)
        self._poke()

    def _poke(self, _: object = None) -> None:
        self._pending = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def run(self, requests: AsyncIterator[Any], context: Any) -> None:
        metrics = self._cache.metrics
        metrics.streams.inc()
        self._log.debug("xds.stream.open", peer=context.peer())
        self.metadata = {str(k): str(v) for k, v in (context.invocation_metadata() or ())}
        reader = asyncio.create_task(self._read(requests))
        reader.add_done_callback(self._poke)
        try:
            stuck = not await self._write(reader, context)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self._cache.unwatch(self)
            self.state.close()
            metrics.streams.dec()
            self._log.debug("xds.stream.closed")
        if stuck:
            finished = asyncio.Event()
            context.add_done_callback(lambda _: finished.set())
            await finished.wait()  # cancelled by grpc when the connection goes

    async def _read(self, requests: AsyncIterator[Any]) -> None:
        async for request in requests:
            self._handle(request)
            del request  # not held while the next one is awaited

    def _handle(self, request: Any) -> None:
        had_node = self.state.node is not None
        if self.state.framing is Framing.SOTW:
            result = self.state.on_request(request)
        else:
            result = self.state.on_delta_request(request)
        if not had_node and self.state.node is not None:
            self._log = self._log.bind(node_id=self.state.node_id)
            self._log.info("xds.stream.node", cluster=self.state.node.cluster)
        self._after(result)
        self.handled += 1
        self._poke()

    def _after(self, result: RequestResult) -> None:
        type_name = TYPE_NAMES.get(result.type_url, result.type_url)
        if result.ignored:
            self._log.debug("xds.request.ignored", type=type_name)
        elif result.stale:
            self._log.debug("xds.request.stale", type=type_name)
        if result.nack is not None:
            self._cache.record_nack(self.state.node_id, result.nack, self._log)
        elif result.acked is not None:
            self._cache.record_ack(self.state.node_id, result.type_url, result.acked)
        if result.interest_changed:
            interest = self.state.interest(result.type_url)
            self._cache.set_interest(self, result.type_url, interest)

    async def _write(self, reader: asyncio.Task[None], context: Any) -> bool:
        """Write until the client goes away (True) or stops reading (False)."""
        if not self._cache.ready:
            ready = asyncio.ensure_future(self._cache.wait_ready())
            self._awaiting_snapshot = True
            try:
                await asyncio.wait({ready, reader}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._awaiting_snapshot = False
                ready.cancel()
        loop = asyncio.get_running_loop()
        while not reader.done():
            self._pending = False
            while (out := self.state.next_response(self._cache.snapshot)) is not None:
                if not await self._send(out, context):
                    return False
            if self._pending or reader.done():
                continue
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if not reader.cancelled() and (error := reader.exception()) is not None:
            self._log.info("xds.stream.read_error", error=repr(error))
        return True

    async def _send(self, out: Outgoing, context: Any) -> bool:
        try:
            await asyncio.wait_for(context.write(out.payload), self._write_timeout)
        except TimeoutError:
            self._log.warning("xds.stream.write_timeout", timeout_s=self._write_timeout)
            return False
        self.sent += 1
        type_name = TYPE_NAMES.get(out.type_url, out.type_url)
        self._cache.metrics.pushes.labels(type=type_name).inc()
        self._log.debug(
            "xds.push",
            type=type_name,
            version=out.version,
            nonce=out.nonce,
            resources=len(out.resources),
            removed=len(out.removed),
            bytes=len(out.payload),
        )
        return True
