"""A small image server on 127.0.0.1 for the http adapter's tests: both contracts, scripted faults, counters.

Native images are a pure function of (prompt, seed, width, height) that the tests recompute (``native_pixels``);
OpenAI-contract images also depend on how many requests the server has answered, as a seedless hosted model's
would. Faults are scripted per prompt: ``server.script(prompt, "500", "429:1")`` makes that prompt's next two
requests fail, and later ones succeed. A request budget bounds every test: past it the server answers 400, a
status the adapter does not retry.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

COST = 0.0125
SERVER_LATENCY_MS = 7.0
NATIVE_PATH = "/generate"
OPENAI_PATH = "/v1/images/generations"


def native_pixels(prompt: str, seed: int, width: int, height: int) -> bytes:
    digest = hashlib.sha256(f"{prompt}\0{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8).tobytes()


def encode(pixels: bytes, width: int, height: int, image_format: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(buffer, format=image_format)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class ImageServer:
    def __init__(self, budget: int = 200, delay: float = 0.0, expected_key: str | None = None,
                 echo_key_on_401: bool = False):
        self.budget, self.delay, self.expected_key, self.echo_key_on_401 = budget, delay, expected_key, echo_key_on_401
        self.lock = threading.Lock()
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.requests: list[dict] = []  # body, path, headers, arrival time, per request
        self.successes: Counter = Counter()  # prompt -> 2xx image replies sent
        self.in_flight = self.max_in_flight = 0
        self.hold = threading.Event()  # prompts scripted "hold" wait for it
        self.hold.set()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a "slow" handler still sleeping must not hold up shutdown
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, prompt: str, *faults: str) -> None:
        with self.lock:
            self.faults[prompt].extend(faults)

    def count(self, prompt: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if prompt is None or r["body"].get("prompt") == prompt)

    def __enter__(self) -> "ImageServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- request handling ---

    def _next_fault(self, prompt: str) -> str | None:
        with self.lock:
            queue = self.faults.get(prompt)
            return queue.pop(0) if queue else None

    def _reply(self, path: str, body: dict, headers) -> tuple[int, dict, bytes]:
        """(status, headers, body) for one request."""
        with self.lock:
            self.requests.append({"path": path, "body": body, "headers": dict(headers), "at": time.monotonic()})
            over_budget = len(self.requests) > self.budget
        if over_budget:
            return 400, {}, b'{"error": "test request budget exceeded"}'
        if self.expected_key is not None and headers.get("Authorization") != f"Bearer {self.expected_key}":
            said = f"Incorrect API key provided: {headers.get('Authorization')}" if self.echo_key_on_401 else "no key"
            return 401, {}, json.dumps({"error": {"message": said}}).encode()
        if path not in (NATIVE_PATH, OPENAI_PATH):
            return 404, {}, b'{"error": "no such endpoint"}'
        prompt = body.get("prompt", "")
        fault = self._next_fault(prompt)
        if fault is None or fault in ("slow", "hold", "wrong_size", "not_image", "bad_base64", "truncated"):
            return self._image_reply(path, body, fault)
        if fault.startswith("429"):
            _, _, retry_after = fault.partition(":")
            return 429, {"Retry-After": retry_after} if retry_after else {}, b'{"error": "rate limited"}'
        if fault in ("301", "302", "307", "308"):
            return int(fault), {"Location": self.base + "/moved"}, b""
        if fault.isdigit():
            return int(fault), {}, json.dumps({"error": f"injected {fault}"}).encode()
        if fault == "not_json":
            return 200, {"Content-Type": "text/html"}, b"<html>502 from a proxy</html>"
        if fault == "no_images":
            return 200, {}, b'{"status": "queued"}'
        raise ValueError(f"unknown fault {fault!r}")

    def _image_reply(self, path: str, body: dict, fault: str | None) -> tuple[int, dict, bytes]:
        if fault == "slow":
            time.sleep(3.0)  # longer than the tests' --opt timeout
        if fault == "hold":
            self.hold.wait(60)
        if path == NATIVE_PATH:
            width, height = int(body["width"]), int(body["height"])
            pixels = native_pixels(body["prompt"], int(body["seed"]), width, height)
        else:
            width, height = (int(v) for v in body["size"].split("x"))
            pixels = native_pixels(body["prompt"], 10_000 + self.count(), width, height)  # no seed: differs per call
        if fault == "wrong_size":
            width += 1
            pixels = bytes(width * height * 3)
        encoded = encode(pixels, width, height, "JPEG" if body.get("format") == "jpeg" else "PNG")
        if body.get("data_url"):
            encoded = "data:image/png;base64," + encoded
        if fault == "bad_base64":
            encoded = encoded[:-3] + "!!!"
        if fault == "truncated":  # valid base64 of a PNG cut short: its header reads, its pixels do not
            encoded = base64.b64encode(base64.b64decode(encoded)[:-40]).decode()
        if fault == "not_image":
            encoded = base64.b64encode(b"GIF? no, just text").decode()
        if path == NATIVE_PATH:
            reply = {"images": [encoded], "cost": COST, "latency_ms": SERVER_LATENCY_MS}
        else:
            reply = {"created": 1, "data": [{"b64_json": encoded, "revised_prompt": f"revised: {body['prompt']}"}]}
        if fault is None or fault == "hold":  # a "slow" reply goes to a client that has given up on it
            with self.lock:
                self.successes[body["prompt"]] += 1
        return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                    body = json.loads(raw)
                    if server.delay:
                        time.sleep(server.delay)
                    if server._next_fault_is_reset(body.get("prompt", "")):
                        self.close_connection = True
                        self.connection.shutdown(2)  # no reply at all: a reset connection for the client
                        return
                    status, headers, payload = server._reply(self.path, body, self.headers)
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass  # the client gave up on a slow reply
                finally:
                    with server.lock:
                        server.in_flight -= 1

        return Handler

    def _next_fault_is_reset(self, prompt: str) -> bool:
        with self.lock:
            queue = self.faults.get(prompt)
            if queue and queue[0] == "reset":
                queue.pop(0)
                self.requests.append({"path": "reset", "body": {"prompt": prompt}, "headers": {}, "at": time.monotonic()})
                return True
            return False
