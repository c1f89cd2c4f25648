"""The standalone host's uvicorn settings against slow clients (slowloris): connection limits, a header read
timeout and a cap on half-sent requests per client address, applied before any login runs."""

from __future__ import annotations

from typing import Any

HEADER_TIMEOUT_S = 10.0
"""A request's headers must be complete this long after its first byte (or the connection), else it is closed."""
PENDING_PER_CLIENT = 16
"""Connections one address may hold with headers still incomplete; one more closes the oldest of them."""
SERVER_LIMITS = {"timeout_keep_alive": 5, "limit_concurrency": 256, "h11_max_incomplete_event_size": 16 * 1024}


def server_options() -> dict[str, Any]:
    """uvicorn's settings for the host: the limits above and the header guard."""
    return {"log_level": "warning", "http": guarded_protocol(), **SERVER_LIMITS}


def guarded_protocol() -> type:
    """uvicorn's h11 protocol with a header read timeout and a cap on half-sent requests per client address.
    Slowloris: sockets that send a header byte now and then hold the server's files for ever, before any login
    runs (the login reads complete headers); uvicorn has no header timeout of its own."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderGuard(H11Protocol):
        header_timer: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            waiting = [other for other in self.connections if isinstance(other, HeaderGuard)
                       and other.header_timer is not None and other.client and self.client
                       and other.client[0] == self.client[0]]
            if len(waiting) >= PENDING_PER_CLIENT:  # the oldest, so a real client's prompt request gets through
                oldest = min(waiting, key=lambda other: other.header_timer.when())
                oldest._headers_done()  # no longer waiting: it leaves ``connections`` only on the next loop turn
                oldest.transport.close()
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE:
                self._await_headers()
            else:
                self._headers_done()

        def connection_lost(self, exc: Exception | None) -> None:
            self._headers_done()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            if self.header_timer is None:
                self.header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_late)

        def _headers_done(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def _headers_late(self) -> None:
            self.header_timer = None
            if self.conn.their_state is h11.IDLE:
                self.transport.close()

    return HeaderGuard
