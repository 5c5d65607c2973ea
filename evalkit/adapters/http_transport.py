"""HTTP plumbing of the ``http`` adapter: one POST with a whole-request deadline, pacing, backoff and Retry-After.

The standard library's ``urllib.request`` does the requests: it speaks HTTPS with certificate checks, honours the
usual ``https_proxy`` / ``no_proxy`` variables, and the request rate of an image API is seconds per image, so a
connection pool (``requests``, ``httpx``) would buy nothing measurable and would add a dependency. Redirects are
not followed: urllib would resend the ``Authorization`` header to whatever host a redirect names.

Pacing (``RateLimiter``) is a token bucket: tokens accrue at ``rpm / 60`` per second up to ``burst``, each request
takes one, and a request that finds none waits ``(1 - tokens) / rate`` seconds; the bucket may go negative, which
queues waiting requests in arrival order. With ``burst = 1`` requests start at least ``60 / rpm`` s apart, so any
open 60-second window holds at most ``rpm`` of them.

Backoff after the k-th failed attempt (k = 0, 1, ...) waits ``u * min(cap, base * 2**k)`` with u uniform in
[0.5, 1) ("equal jitter": many clients that failed together do not retry together, and the wait still grows), or
the server's ``Retry-After`` when that is longer.
"""

from __future__ import annotations

import email.utils
import http.client
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Mapping

MAX_RESPONSE_BYTES = 256 * 1024 * 1024  # a few images in base64; more is a broken server, not a reply
READ_CHUNK = 1 << 16


class TransportError(Exception):
    """The request got no complete HTTP response (refused, reset, timed out, truncated); worth retrying."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx status, which the caller reports


_OPENER = urllib.request.build_opener(_RefuseRedirects())


def _read_all(response, deadline: float, timeout: float) -> bytes:
    """The response body, abandoned once the whole request has taken longer than ``timeout`` seconds."""
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise TransportError(f"timed out after {timeout:g} s (the response was still arriving)")
        chunk = response.read(READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise TransportError(f"the response is larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
        chunks.append(chunk)


def _describe(error: BaseException, timeout: float) -> str:
    reason = getattr(error, "reason", error)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, http.client.IncompleteRead):
        return "the response ended early"
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return f"connection failed ({type(reason).__name__}: {text})"


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Reply:
    """POST ``body`` and return the reply, whatever its status; ``TransportError`` when there is no full reply.

    ``timeout`` bounds connecting, every wait on the socket, and (checked between reads) the whole request.
    """
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    deadline = time.monotonic() + timeout
    try:
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return Reply(response.status, response.headers, _read_all(response, deadline, timeout))
        except urllib.error.HTTPError as error:  # any non-2xx status: its body is the server's explanation
            with error:
                return Reply(error.code, error.headers or {}, _read_all(error, deadline, timeout))
    except TransportError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        raise TransportError(_describe(error, timeout)) from None


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)  # the RFC says whole seconds; a fraction costs nothing to honour
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - now()).total_seconds()
    return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (0-based); see the module docstring."""
    return rng.uniform(0.5, 1.0) * min(cap, base * 2.0 ** min(attempt, 60))


class RateLimiter:
    """A thread-safe token bucket of ``burst`` tokens refilled at ``per_minute / 60`` per second."""

    def __init__(self, per_minute: float, burst: int = 1, clock: Callable[[], float] = time.monotonic):
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; returns how many seconds to wait before sending (0 when one was available)."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
