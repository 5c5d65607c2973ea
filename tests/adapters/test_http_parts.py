"""The http adapter's parts: the token bucket on a fake clock, Retry-After, backoff, options, auth headers, the
cache's handling of a damaged entry, redirects, statuses that are (not) retried, and the image_details hook."""

from __future__ import annotations

import base64
import io
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import numpy as np
import pytest
from PIL import Image

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.adapters.base import adapter_image_details
from evalkit.adapters.http_cache import request_key
from evalkit.adapters.http_transport import RateLimiter, backoff_delay, parse_retry_after
from evalkit.errors import EvalkitError
from evalkit.runs.store import GENERATION_LOG, Run
from tests.adapters.image_server import NATIVE_PATH, ImageServer, native_pixels


@pytest.fixture(autouse=True)
def no_key_no_proxy(monkeypatch):
    for name in ("EVALKIT_HTTP_API_KEY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_spaces_requests_on_a_fake_clock():
    clock = FakeClock()
    limiter = RateLimiter(per_minute=30, burst=3, clock=clock)  # a token each 2 s, 3 at most
    starts = [limiter.reserve() for _ in range(6)]  # six requests at t=0
    assert starts == pytest.approx([0, 0, 0, 2, 4, 6])
    clock.now = 20.0  # idle long enough to refill the bucket, never beyond 3 tokens
    assert [limiter.reserve() for _ in range(4)] == pytest.approx([0, 0, 0, 2])


def test_token_bucket_never_exceeds_the_rate_in_any_minute():
    clock, rng = FakeClock(), random.Random(7)
    limiter = RateLimiter(per_minute=20, burst=1, clock=clock)
    starts = []
    for _ in range(200):  # bursty arrivals, each request starts after the wait it was given
        clock.now += rng.choice([0.0, 0.0, 0.5, 7.0])
        starts.append(clock.now + limiter.reserve())
    starts.sort()
    assert max(np.searchsorted(starts, s + 60.0 - 1e-9, side="left") - i for i, s in enumerate(starts)) <= 20
    assert min(b - a for a, b in zip(starts, starts[1:])) == pytest.approx(3.0, abs=1e-9)  # evenly spaced when queued


def test_retry_after_in_seconds_or_as_an_http_date():
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), lambda: now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), lambda: now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None and parse_retry_after("") is None


def test_backoff_doubles_with_jitter_up_to_the_cap():
    rng = random.Random(0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (10, 30.0), (500, 30.0)]:
        delays = [backoff_delay(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert 0.5 * ceiling <= min(delays) and max(delays) < ceiling and np.std(delays) > 0.05 * ceiling


@pytest.mark.parametrize("extra, message", [
    ({}, "needs --opt url="),
    ({"url": "ftp://host/x"}, "must be an http:// or https:// URL"),
    ({"url": "http://user:pw@host/x"}, "must not hold credentials"),
    ({"url": "http://host:99999/x"}, "is not a valid URL"),
    ({"url": "http://h/", "steps": "3"}, "does not take option(s) steps"),
    ({"url": "http://h/", "api": "grpc"}, "expected one of native, openai"),
    ({"url": "http://h/", "api": "openai"}, "needs --opt model=NAME"),
    ({"url": "http://h/", "model": "m"}, "send it as --opt extra.model=NAME"),
    ({"url": "http://h/", "extra.seed": "1"}, "'seed' is set by evalkit"),
    ({"url": "http://h/", "api": "openai", "model": "m", "extra.size": "1x1"}, "'size' is set by evalkit"),
    ({"url": "http://h/", "extra.api_key": "sk-1"}, "send credentials through the environment"),
    ({"url": "http://h/", "extra.": "1"}, "needs a field name"),
    ({"url": "http://h/", "concurrency": "0"}, "concurrency must be > 0"),
    ({"url": "http://h/", "rpm": "-1"}, "rpm must be >= 0"),
    ({"url": "http://h/", "timeout": "soon"}, "--opt timeout='soon' is not a valid float"),
    ({"url": "http://h/", "api_key_env": "EVALKIT_TEST_UNSET_KEY"}, "EVALKIT_TEST_UNSET_KEY is not set"),
])
def test_bad_options_are_one_line_errors(extra, message):
    with pytest.raises(EvalkitError) as error:
        create_adapter("http", AdapterOptions(extra=extra))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_model_path_and_a_key_in_the_url_are_refused(monkeypatch):
    with pytest.raises(EvalkitError, match="not --model-path"):
        create_adapter("http", AdapterOptions(model_path="http://h/", extra={"url": "http://h/"}))
    monkeypatch.setenv("EVALKIT_HTTP_API_KEY", "sk-in-the-url")
    with pytest.raises(EvalkitError, match="holds the API key") as error:
        create_adapter("http", AdapterOptions(extra={"url": "http://h/gen?key=sk-in-the-url"}))
    assert "sk-in-the-url" not in str(error.value)
    monkeypatch.setenv("EVALKIT_HTTP_API_KEY", "sk-two\nlines")
    with pytest.raises(EvalkitError, match="whitespace or control characters") as error:
        create_adapter("http", AdapterOptions(extra={"url": "http://h/"}))
    assert "sk-two" not in str(error.value)


def make(server, tmp_path, **extra):
    options = {"url": server.base + NATIVE_PATH, "cache_dir": str(tmp_path / "cache"), "backoff": "0.01",
               "timeout": "5", **extra}
    return create_adapter("http", AdapterOptions(extra=options))


def batch(*prompts, size=(8, 12)):
    return GenerationBatch(list(prompts), [11 * (n + 1) for n in range(len(prompts))], size[0], size[1],
                           keys=tuple((n, 0) for n in range(len(prompts))))


def test_auth_header_and_scheme(tmp_path, monkeypatch):
    with ImageServer() as server:
        make(server, tmp_path, cache="false").generate(batch("no key set"))
        assert "Authorization" not in server.requests[-1]["headers"]
        monkeypatch.setenv("MY_SERVICE_KEY", "k-123")
        make(server, tmp_path, cache="false", api_key_env="MY_SERVICE_KEY", auth_header="x-api-key",
             auth_scheme="none").generate(batch("raw key header"))
        headers = {name.lower(): value for name, value in server.requests[-1]["headers"].items()}
        assert headers["x-api-key"] == "k-123" and "authorization" not in headers


def test_jpeg_and_data_url_replies_are_decoded(tmp_path):
    with ImageServer() as server:
        [image] = make(server, tmp_path, **{"extra.format": "jpeg", "extra.data_url": "true"}).generate(batch("j"))
        sent = base64.b64decode(server_reply_image(server, "j"))
        assert image.mode == "RGB" and image.tobytes() == Image.open(io.BytesIO(sent)).convert("RGB").tobytes()


def server_reply_image(server, prompt) -> str:
    """Re-encode what the server sent for ``prompt`` (its replies are deterministic)."""
    from tests.adapters.image_server import encode

    body = next(r["body"] for r in server.requests if r["body"].get("prompt") == prompt)
    width, height = body["width"], body["height"]
    return encode(native_pixels(prompt, body["seed"], width, height), width, height, "JPEG")


def test_a_damaged_cache_entry_is_fetched_again(tmp_path):
    with ImageServer() as server:
        adapter = make(server, tmp_path)
        first = adapter.generate(batch("p"))
        key, _ = request_key(adapter.endpoint, "native", {"prompt": "p", "seed": 11, "width": 12, "height": 8, "n": 1}, 11)
        entry = adapter.cache.path(key)
        assert entry.is_file()
        entry.write_text('{"format": "evalkit-http-cache/1", "key": "%s", "image": "!!"}' % key)
        with pytest.warns(UserWarning, match="ignoring the unreadable http cache entry"):
            again = adapter.generate(batch("p"))
        assert server.count() == 2 and again[0].tobytes() == first[0].tobytes()
        assert make(server, tmp_path).generate(batch("p"))[0].tobytes() == first[0].tobytes()
        assert server.count() == 2  # replaced by a good entry


@pytest.mark.parametrize("fault, sent, error", [
    ("408", 2, None), ("502", 2, None), ("501", 1, "HTTP 501 Not Implemented"), ("404", 1, "HTTP 404 Not Found"),
    ("307", 1, "a redirect to http://127.0.0.1"),
])
def test_which_statuses_are_retried(tmp_path, fault, sent, error):
    with ImageServer() as server:
        server.script("p", fault)
        adapter = make(server, tmp_path)
        if error is None:
            [image] = adapter.generate(batch("p"))
            assert image.tobytes() == native_pixels("p", 11, 12, 8)
            assert adapter.image_details()[0]["attempts"] == 2
        else:
            with pytest.raises(EvalkitError, match=error):
                adapter.generate(batch("p"))
        assert server.count("p") == sent and all(r["path"] != "/moved" for r in server.requests)


def test_image_details_hook_and_the_generation_log(tmp_path):
    class Reports:
        name = "reports"

        def __init__(self, details):
            self.details = details

        def image_details(self):
            return self.details

    assert adapter_image_details(object(), 2) is None  # adapters without the method
    assert adapter_image_details(Reports([{"cost": 1}, {}]), 2) == [{"cost": 1}, {}]
    for bad in ([{"cost": 1}], [{}, "x"], None):
        with pytest.raises(EvalkitError, match="one dict per image"):
            adapter_image_details(Reports(bad), 2)

    run = Run.create(tmp_path / "run", {"run_id": "r", "n_images": 3}, [])
    run.append_generation_timing(1, 0.5, "cpu", [(0, 0)], "2026-12-01T00:00:00+00:00")  # as older runs wrote it
    run.append_generation_timing(2, 0.5, "remote:h", [(1, 0), (2, 0)], "2026-12-01T00:00:01+00:00",
                                 [{"latency_ms": 100.0, "cost": 0.5}, {"latency_ms": 300.0, "cost": None}])
    timings = run.generation_timings()
    assert "image_details" not in timings[0] and timings[1]["image_details"][0]["cost"] == 0.5
    with open(tmp_path / "run" / GENERATION_LOG, "a") as log:
        log.write('{"images": 1, "seconds": 1, "device": "cpu", "keys": [[3, 0]], "at": "x", "image_details": {}}\n')
    with pytest.raises(EvalkitError, match="line 3: not a generation timing entry"):
        run.generation_timings()
