"""The ``http`` adapter's options (``--opt KEY=VALUE``, documented in evalkit/adapters/http.py) and its API key."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evalkit.adapters.base import AdapterOptions, check_known_options, parse_bool, read_option
from evalkit.adapters.http_protocol import APIS, CORE_FIELDS, NATIVE, OPENAI
from evalkit.errors import EvalkitError
from evalkit.paths import cache_dir

DEFAULT_KEY_ENV = "EVALKIT_HTTP_API_KEY"
EXTRA_PREFIX = "extra."
OPTIONS = {"url", "api", "model", "api_key_env", "auth_header", "auth_scheme", "concurrency", "rpm", "burst",
           "timeout", "max_retries", "backoff", "backoff_max", "retry_after_max", "cache", "cache_dir"}
CREDENTIAL_FIELDS = {"key", "api_key", "apikey", "token", "access_token", "secret", "password", "authorization"}


@dataclass(frozen=True)
class HttpSettings:
    """Everything but the key, which the adapter keeps apart so that nothing printing settings can show it."""

    api: str
    url: str
    model: str | None
    extra: dict[str, Any]
    key_env: str
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"  # "" sends the key alone
    concurrency: int = 4
    rpm: float = 0.0
    burst: int = 1
    timeout: float = 300.0
    max_retries: int = 5
    backoff: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 600.0
    cache_dir: Path | None = field(default=None)  # None: no cache


def _read_url(options: AdapterOptions) -> str:
    if options.model_path:
        raise EvalkitError("the http adapter takes its endpoint as --opt url=..., not --model-path")
    url = options.extra.get("url", "").strip()
    if not url:
        raise EvalkitError("the http adapter needs --opt url=http(s)://host/path (the endpoint, or the API base with api=openai)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise EvalkitError(f"--opt url={url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EvalkitError(f"--opt url={url!r} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise EvalkitError("--opt url must not hold credentials (user:password@): it is recorded in the manifest; "
                           "put the key in the environment (--opt api_key_env=NAME)")
    return url


def _extra_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _read_extra(options: AdapterOptions, api: str) -> dict[str, Any]:
    extra = {}
    for option, raw in sorted(options.extra.items()):
        if not option.startswith(EXTRA_PREFIX):
            continue
        name = option[len(EXTRA_PREFIX):]
        if not name:
            raise EvalkitError("--opt extra.NAME=VALUE needs a field name after 'extra.'")
        if name in CORE_FIELDS[api]:
            raise EvalkitError(f"--opt {option}: {name!r} is set by evalkit in the {api} contract")
        if name.lower() in CREDENTIAL_FIELDS:
            raise EvalkitError(f"--opt {option}: request fields are recorded in the manifest; send credentials "
                               f"through the environment (--opt api_key_env=NAME)")
        extra[name] = _extra_value(raw)
    return extra


def _positive(options: AdapterOptions, key: str, default: float, convert=float, minimum: float = 0.0,
              strict: bool = True) -> Any:
    value = read_option(options, key, default, convert)
    if value != value or value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise EvalkitError(f"--opt {key} must be {relation} {minimum:g}, got {options.extra.get(key)}")
    return value


def read_settings(options: AdapterOptions) -> HttpSettings:
    check_known_options(AdapterOptions(extra={k: v for k, v in options.extra.items()
                                              if not k.startswith(EXTRA_PREFIX)}), OPTIONS, "http")
    api = options.extra.get("api", NATIVE).strip().lower()
    if api not in APIS:
        raise EvalkitError(f"--opt api={api!r}: expected one of {', '.join(APIS)}")
    model = options.extra.get("model", "").strip() or None
    if api == OPENAI and model is None:
        raise EvalkitError("--opt api=openai needs --opt model=NAME (e.g. dall-e-2, dall-e-3, gpt-image-1)")
    if api == NATIVE and model is not None:
        raise EvalkitError("the native contract has no model field: send it as --opt extra.model=NAME")
    use_cache = read_option(options, "cache", True, parse_bool)
    return HttpSettings(
        api=api, url=_read_url(options), model=model, extra=_read_extra(options, api),
        key_env=options.extra.get("api_key_env", DEFAULT_KEY_ENV).strip(),
        auth_header=options.extra.get("auth_header", "").strip() or "Authorization",
        auth_scheme="" if options.extra.get("auth_scheme", "Bearer").strip().lower() in ("", "none")
        else options.extra.get("auth_scheme", "Bearer").strip(),
        concurrency=_positive(options, "concurrency", 4, int),
        rpm=_positive(options, "rpm", 0.0, minimum=0.0, strict=False),
        burst=_positive(options, "burst", 1, int),
        timeout=_positive(options, "timeout", 300.0),
        max_retries=_positive(options, "max_retries", 5, int, strict=False),
        backoff=_positive(options, "backoff", 1.0, strict=False),
        backoff_max=_positive(options, "backoff_max", 60.0, strict=False),
        retry_after_max=_positive(options, "retry_after_max", 600.0, strict=False),
        cache_dir=(Path(options.extra.get("cache_dir") or cache_dir("http")) if use_cache else None),
    )


def read_api_key(options: AdapterOptions, key_env: str) -> str | None:
    """The key from ``$key_env``; None when the default variable is unset. Messages name the variable only."""
    if not key_env:
        raise EvalkitError("--opt api_key_env needs the name of an environment variable")
    key = os.environ.get(key_env, "")
    if not key:
        if "api_key_env" in options.extra:
            raise EvalkitError(f"--opt api_key_env={key_env}: the environment variable {key_env} is not set")
        return None
    if key != key.strip() or any(ord(c) < 33 or ord(c) == 127 for c in key):
        raise EvalkitError(f"the API key in ${key_env} holds whitespace or control characters")
    return key
