"""The ``http`` adapter: a hosted model behind a JSON-over-HTTP endpoint, one request per image.

    export EVALKIT_HTTP_API_KEY=...        # only if the server wants one
    evalkit run --model http --opt url=https://models.example.com/generate --opt extra.steps=30 --size 512
    evalkit run --model http --opt api=openai --opt url=https://api.openai.com --opt model=dall-e-2 --size 256

Contract ``native`` (the default). One ``POST {url}`` per image, ``Content-Type: application/json``::

    {"prompt": "a red cube on a blue sphere",   # the benchmark prompt, as is
     "seed": 1234567,                           # evalkit's 31-bit seed of this (prompt row, sample)
     "width": 512, "height": 512,               # the size the image must have
     "n": 1,                                    # always one image per request
     "steps": 30}                               # each --opt extra.NAME=VALUE, VALUE read as JSON when it
                                                # parses (30, 7.5, true, "30") and as a string otherwise

A success is any 2xx status with a JSON object::

    {"images": ["<base64 PNG or JPEG>"],        # exactly one; a data:image/...;base64, prefix is allowed
     "cost": 0.004,                             # optional, >= 0, what this image cost, in the server's unit
     "latency_ms": 850}                         # optional, >= 0, the server's own time for it

The same (prompt, seed, width, height, extra fields) must give the same image; that is what makes runs
reproducible. An error is any other status, best with ``{"error": "why"}`` or ``{"error": {"message": "why"}}``
(quoted, on one line, in evalkit's message). Statuses 408, 429 and 5xx (except 501 and 505) are retried, waiting
at least ``Retry-After`` (seconds or an HTTP date) when the server sends it; every other status stops the run
at once. Redirects are not followed, so the key never goes to a host other than ``url``'s.

Contract ``openai`` (``--opt api=openai``): the OpenAI Images API and servers compatible with it. One
``POST {url}/v1/images/generations`` per image (a ``url`` ending in ``/v1`` or ``/images/generations`` is
completed, not doubled) with ``{"model", "prompt", "n": 1, "size": "WxH", "response_format": "b64_json"}`` plus
the ``extra.*`` fields (``extra.quality=hd``, ``extra.style=vivid``); the image is ``data[0].b64_json``, and a
``data[0].revised_prompt`` is recorded. That API takes no seed, so its images are not seed-reproducible:
``config()`` says ``"seed_reproducible": false``, and only the response cache makes a rerun give the same images.

Either way, a reply that is not JSON, has no image, or holds bad base64 or undecodable bytes is retried like a
5xx; an image of the wrong size (or a format other than PNG, JPEG, WebP, or a ``cost`` that is not a number)
stops the run, since a retry would pay for the same answer. When retries run out the run stops with one line
naming the prompt row, the sample, the attempts and the last status; the images already back are kept.

Options (``--opt KEY=VALUE``):

    url              the endpoint (native) or API base (openai); http or https; required. It is recorded in the
                     manifest, so it must not hold credentials: user:password@ in it is refused
    api              native | openai (default native)
    model            the model name sent by the openai contract (required there); native servers take it as
                     extra.model
    api_key_env      the environment variable holding the API key (default EVALKIT_HTTP_API_KEY; when that is
                     unset no key is sent; a variable named explicitly must be set)
    auth_header      the header carrying the key (default Authorization)
    auth_scheme      what precedes the key in it (default Bearer; "none" sends the key alone, e.g. for
                     auth_header=x-api-key)
    concurrency      requests in flight at once (default 4); a batch is --batch-size images, so keep
                     --batch-size >= concurrency
    rpm              at most this many requests (retries included) per minute, 0 = no limit (default 0)
    burst            requests that may start together under rpm (default 1: evenly spaced)
    timeout          seconds one request may take, connecting to the last byte (default 300)
    max_retries      retries after the first attempt (default 5)
    backoff          first retry wait in seconds, doubled per retry with jitter (default 1)
    backoff_max      longest computed wait (default 60)
    retry_after_max  a Retry-After longer than this stops the run instead of waiting (default 600)
    cache            true | false: keep every reply (default true; see evalkit/adapters/http_cache.py)
    cache_dir        where (default <evalkit cache>/http, shared by all runs)
    extra.NAME       a field added to each request body (see above)

The API key is read from the environment only. It is sent in the auth header and nowhere else: not in
``config()`` (which goes into the manifest), not in the cache key or files, and any message that would quote it
(a server that echoes it in an error) has it replaced by ``[redacted]``. ``config()`` records the contract, the
endpoint, the model and the extra fields, everything that changes images; concurrency, limits and retries do not
change images and are left out, so changing them resumes the same run. ``checkpoint_hash()`` is None: name the
model version in ``model`` or an ``extra.*`` field. The device is ``remote:<host>``. Each image's details go
into the run's generation.jsonl with its batch: ``latency_ms`` (client-side, of the request that made it),
``attempts`` (requests it took), ``cached`` (true when this run took it from the cache: made, and paid for,
earlier), the server's ``cost`` and ``server_latency_ms`` when it sent them, and an OpenAI ``revised_prompt``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from evalkit import __version__
from evalkit.adapters.base import AdapterOptions, GenerationBatch
from evalkit.adapters.http_cache import Entry, ResponseCache, request_key
from evalkit.adapters.http_options import read_api_key, read_settings
from evalkit.adapters.http_protocol import (NATIVE, OPENAI, ContractError, MalformedReply, decode_reply, endpoint,
                                            error_text, request_body)
from evalkit.adapters.http_transport import RateLimiter, Reply, TransportError, backoff_delay, parse_retry_after, post
from evalkit.errors import EvalkitError

FINAL_5XX = {501, 505}  # not implemented / version not supported: a retry gets the same answer
DEFAULT_SIZES = {NATIVE: (256, 256), OPENAI: (1024, 1024)}
REDACTED = "[redacted]"


class _Stopped(Exception):
    """Another image of the batch failed: this one is not requested (again)."""


def _describe_status(reply: Reply) -> str:
    try:
        phrase = f" {HTTPStatus(reply.status).phrase}"
    except ValueError:
        phrase = ""
    said = error_text(reply.body)
    return f"HTTP {reply.status}{phrase}" + (f": {said}" if said else "")


def _retryable(status: int) -> bool:
    return status in (408, 429) or (500 <= status < 600 and status not in FINAL_5XX)


@dataclass(frozen=True)
class _Job:
    position: int  # in the batch
    prompt: str
    seed: int
    key: tuple[int, int]  # (prompt row, sample), for messages


class HttpAdapter:
    name = "http"

    def __init__(self, options: AdapterOptions):
        self.settings = read_settings(options)
        self._key = read_api_key(options, self.settings.key_env)
        if self._key and self._key in self.settings.url:
            raise EvalkitError(f"--opt url holds the API key from ${self.settings.key_env}; the URL is recorded "
                               f"in the manifest, so send the key in a header (--opt auth_header=NAME)")
        self.endpoint = endpoint(self.settings.api, self.settings.url)
        self.default_size = DEFAULT_SIZES[self.settings.api]
        self.device = f"remote:{urlsplit(self.endpoint).netloc}"
        self.cache = ResponseCache(self.settings.cache_dir) if self.settings.cache_dir is not None else None
        self.limiter = RateLimiter(self.settings.rpm, self.settings.burst) if self.settings.rpm else None
        self._headers = self._request_headers()
        self._rng = random.Random()
        self._details: list[dict[str, Any]] = []

    def _request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": f"evalkit/{__version__}"}
        if self._key:
            scheme = self.settings.auth_scheme
            headers[self.settings.auth_header] = f"{scheme} {self._key}" if scheme else self._key
        return headers

    def __repr__(self) -> str:  # names no header: the key cannot show up in a printed adapter
        return f"HttpAdapter({self.settings.api}, {self.endpoint})"

    def config(self) -> dict[str, Any]:
        config = {"api": self.settings.api, "endpoint": self.endpoint, "model": self.settings.model,
                  "extra": self.settings.extra, "seed_reproducible": self.settings.api == NATIVE}
        if self.settings.api == OPENAI:
            config["note"] = "the OpenAI Images API takes no seed: the same request may return other images"
        return config

    def checkpoint_hash(self) -> str | None:
        return None

    def image_details(self) -> list[dict[str, Any]]:
        """Per image of the last batch: latency_ms, attempts, cached, cost, server_latency_ms (+ revised_prompt)."""
        return list(self._details)

    def generate(self, batch: GenerationBatch) -> list[Image.Image]:
        keys = batch.keys or tuple((n, 0) for n in range(len(batch.prompts)))
        jobs = [_Job(n, prompt, int(seed), key) for n, (prompt, seed, key)
                in enumerate(zip(batch.prompts, batch.seeds, keys))]
        self._details = []
        results = self._run_jobs(jobs, batch.width, batch.height)
        self._details = [self._detail(entry, cached) for entry, cached in results]
        return [entry.image for entry, _ in results]

    def _run_jobs(self, jobs: list[_Job], width: int, height: int) -> list[tuple[Entry, bool]]:
        """Every job on at most ``concurrency`` threads. A failure stops the jobs not yet sent; requests in flight
        finish (and are cached, since they are paid for), then the failure of the earliest image is raised."""
        stop = threading.Event()
        results: list[tuple[Entry, bool] | None] = [None] * len(jobs)
        failures: list[tuple[int, BaseException]] = []
        workers = max(1, min(self.settings.concurrency, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evalkit-http") as pool:
            futures = {pool.submit(self._obtain, job, width, height, stop): job for job in jobs}
            try:
                for future in as_completed(futures):
                    try:
                        results[futures[future].position] = future.result()
                    except _Stopped:
                        pass
                    except Exception as error:  # noqa: BLE001 - collected, the first one is raised below
                        failures.append((futures[future].position, error))
                        stop.set()
            except BaseException:  # Ctrl-C: stop waiting requests, let the ones in flight end
                stop.set()
                for future in futures:
                    future.cancel()
                raise
        if failures:
            raise min(failures, key=lambda failure: failure[0])[1]
        return results  # type: ignore[return-value]  # no failure: every job has its result

    def _obtain(self, job: _Job, width: int, height: int, stop: threading.Event) -> tuple[Entry, bool]:
        """(the image, whether it came from the cache)."""
        body = request_body(self.settings.api, job.prompt, job.seed, width, height, self.settings.model,
                            self.settings.extra)
        key, request = request_key(self.endpoint, self.settings.api, body, job.seed)
        if self.cache is not None:
            entry = self.cache.load(key, width, height)
            if entry is not None:
                return entry, True
        entry = self._fetch(json.dumps(body, ensure_ascii=False).encode("utf-8"), job, width, height, stop)
        if self.cache is not None:
            self.cache.store(key, request, entry)
        return entry, False

    def _fetch(self, data: bytes, job: _Job, width: int, height: int, stop: threading.Event) -> Entry:
        settings = self.settings
        for attempt in range(settings.max_retries + 1):
            self._pace(stop)
            started = time.perf_counter()
            retry_after = None
            try:
                reply = post(self.endpoint, data, self._headers, settings.timeout)
            except TransportError as error:
                failure = str(error)
            else:
                latency_ms = (time.perf_counter() - started) * 1000.0
                if 200 <= reply.status < 300:
                    try:
                        decoded = decode_reply(settings.api, reply.body, width, height)
                    except MalformedReply as error:
                        failure = f"a malformed reply: {error}"
                    except ContractError as error:
                        raise self._error(job, str(error)) from None
                    else:
                        return Entry(decoded.image, decoded.encoded, latency_ms, attempt + 1, decoded.cost,
                                     decoded.server_latency_ms, decoded.revised_prompt)
                elif _retryable(reply.status):
                    failure = _describe_status(reply)
                    retry_after = parse_retry_after(reply.headers.get("Retry-After"))
                else:
                    raise self._error(job, _describe_status(reply) + self._hint(reply)) from None
            if attempt == settings.max_retries:
                raise self._error(job, f"gave up after {attempt + 1} attempts (--opt max_retries="
                                       f"{settings.max_retries}); the last: {failure}")
            self._back_off(attempt, retry_after, job, failure, stop)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _pace(self, stop: threading.Event) -> None:
        if self.limiter is not None:
            wait = self.limiter.reserve()
            if wait > 0 and stop.wait(wait):
                raise _Stopped
        if stop.is_set():
            raise _Stopped

    def _back_off(self, attempt: int, retry_after: float | None, job: _Job, failure: str,
                  stop: threading.Event) -> None:
        delay = backoff_delay(attempt, self.settings.backoff, self.settings.backoff_max, self._rng)
        if retry_after is not None:
            if retry_after > self.settings.retry_after_max:
                raise self._error(job, f"{failure}, and the server asks to retry after {retry_after:g} s, more than "
                                       f"--opt retry_after_max={self.settings.retry_after_max:g}")
            delay = max(delay, retry_after)
        if stop.wait(delay):
            raise _Stopped

    def _hint(self, reply: Reply) -> str:
        if reply.status in (401, 403):
            sent = f"the key from ${self.settings.key_env} was sent" if self._key else f"${self.settings.key_env} is not set, so no key was sent"
            return f" ({sent})"
        if 300 <= reply.status < 400:
            return (f" (a redirect to {reply.headers.get('Location', '?')}; evalkit does not follow redirects, "
                    f"so that the key stays with one host: give the final URL)")
        return ""

    def _error(self, job: _Job, problem: str) -> EvalkitError:
        message = f"http model, prompt {job.key[0]} sample {job.key[1]}: {problem} (POST {self.endpoint})"
        if self._key:
            message = message.replace(self._key, REDACTED)
        return EvalkitError(" ".join(message.split()))

    @staticmethod
    def _detail(entry: Entry, cached: bool) -> dict[str, Any]:
        detail = {"latency_ms": round(entry.latency_ms, 3), "attempts": entry.attempts, "cached": cached,
                  "cost": entry.cost, "server_latency_ms": entry.server_latency_ms}
        if entry.revised_prompt is not None:
            detail["revised_prompt"] = entry.revised_prompt
        return detail


def create(options: AdapterOptions) -> HttpAdapter:
    return HttpAdapter(options)
