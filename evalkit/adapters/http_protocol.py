"""The two request/response shapes the ``http`` adapter speaks (documented in evalkit/adapters/http.py).

``native``: evalkit's own contract, one image per request, the seed sent with it.
``openai``: the OpenAI Images API (``POST /v1/images/generations``, ``b64_json`` replies), which has no seed.

Parsing separates what a retry may fix (``MalformedReply``: not JSON, no image, bad base64, undecodable bytes: a
truncated or garbled reply) from what it cannot (``ContractError``: a well-formed image of the wrong size, a cost
that is not a number, a format other than PNG, JPEG or WebP): the first is retried like a 5xx, the second stops the run at once.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from evalkit.images import to_rgb_image

NATIVE, OPENAI = "native", "openai"
APIS = (NATIVE, OPENAI)
IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}
CORE_FIELDS = {NATIVE: {"prompt", "seed", "width", "height", "n"},
               OPENAI: {"model", "prompt", "n", "size", "response_format"}}
_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,")


class MalformedReply(Exception):
    """A 2xx reply evalkit cannot use; a retry may get a good one."""


class ContractError(Exception):
    """A 2xx reply that breaks the contract in a way a retry will repeat."""


@dataclass(frozen=True)
class Decoded:
    image: Image.Image  # RGB, pixels loaded
    encoded: bytes  # the bytes the server sent (PNG/JPEG/WebP), what the cache keeps
    cost: float | None
    server_latency_ms: float | None
    revised_prompt: str | None


def endpoint(api: str, url: str) -> str:
    """Where requests go: ``url`` itself (native), or ``url`` + ``/v1/images/generations`` (openai; a ``url`` that
    already ends in ``/v1`` gets ``/images/generations``, one ending in ``/images/generations`` is kept)."""
    if api == NATIVE:
        return url
    base = url.rstrip("/")
    if base.endswith("/images/generations"):
        return base
    return base + ("/images/generations" if base.endswith("/v1") else "/v1/images/generations")


def request_body(api: str, prompt: str, seed: int, width: int, height: int, model: str | None,
                 extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON object of one request (one image)."""
    if api == NATIVE:
        body: dict[str, Any] = {"prompt": prompt, "seed": int(seed), "width": int(width), "height": int(height), "n": 1}
    else:
        body = {"model": model, "prompt": prompt, "n": 1, "size": f"{int(width)}x{int(height)}",
                "response_format": "b64_json"}
    return {**body, **extra}


def _decode_image(text: Any, where: str, width: int, height: int) -> tuple[Image.Image, bytes]:
    if not isinstance(text, str) or not text:
        raise MalformedReply(f"{where} is not a base64 string")
    try:
        encoded = base64.b64decode(_DATA_URL.sub("", text.strip()), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedReply(f"{where} is not valid base64") from None
    return image_from_bytes(encoded, where, width, height), encoded


def image_from_bytes(encoded: bytes, where: str, width: int, height: int) -> Image.Image:
    """Decode an image the server sent (PNG, JPEG or WebP) to RGB, checking format and size from its header
    first, so that pixels are only ever decoded at the size the run asked for."""
    rgb = None
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            image_format, size = image.format, image.size
            if image_format in IMAGE_FORMATS and size == (width, height):
                image.load()
                rgb = to_rgb_image(image.copy())
    except UnidentifiedImageError:
        raise MalformedReply(f"{where} is not an image (its bytes start {encoded[:16]!r})") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise MalformedReply(f"{where} is not a readable image ({error})") from None
    if image_format not in IMAGE_FORMATS:
        raise ContractError(f"{where} is a {image_format} image; the contract asks for PNG or JPEG")
    if size != (width, height):
        raise ContractError(
            f"the server returned a {size[0]}x{size[1]} image but {width}x{height} (width x height) was asked "
            f"for; choose a --size the model supports"
        )
    return rgb


def _optional_number(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ContractError(f"the reply's {name!r} is {json.dumps(value)[:40]}, not a number >= 0")
    return float(value)


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedReply(f"the reply is not JSON (it starts {body[:40]!r})") from None
    if not isinstance(payload, dict):
        raise MalformedReply("the reply is JSON but not an object")
    return payload


def decode_reply(api: str, body: bytes, width: int, height: int) -> Decoded:
    """The one image of a 2xx reply, with what the server said about it."""
    payload = _payload(body)
    revised = None
    if api == NATIVE:
        images = payload.get("images")
        if not isinstance(images, list) or len(images) != 1:
            raise MalformedReply(f'the reply has no "images" list of 1 ({error_text(body) or "no error given"})')
        text, where = images[0], "images[0]"
    else:
        data = payload.get("data")
        if not isinstance(data, list) or len(data) != 1 or not isinstance(data[0], dict):
            raise MalformedReply(f'the reply has no "data" list of 1 ({error_text(body) or "no error given"})')
        text, where = data[0].get("b64_json"), "data[0].b64_json"
        revised = data[0].get("revised_prompt") if isinstance(data[0].get("revised_prompt"), str) else None
    image, encoded = _decode_image(text, where, width, height)
    return Decoded(image, encoded, _optional_number(payload, "cost"), _optional_number(payload, "latency_ms"), revised)


def error_text(body: bytes, limit: int = 200) -> str:
    """The server's explanation in an error reply, on one line: ``{"error": "..."}``, ``{"error": {"message":
    "..."}}`` (OpenAI), ``{"detail": ...}``, ``{"message": ...}``, or the start of a text body."""
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        found = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(found, dict):
            found = found.get("message", found)
        if found is not None:
            text = found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)
        elif "images" in payload or "data" in payload:
            text = ""  # a success-shaped body: nothing to quote
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 3] + "..."
