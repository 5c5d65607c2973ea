"""The http adapter through `evalkit run --model http`, against the image server in tests/adapters/image_server.py
(127.0.0.1 only): both contracts, injected faults, the response cache, concurrency and rate limits, and the API
key, which must appear in no file and no output."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from evalkit.cli import main
from evalkit.runs.efficiency import generation_efficiency
from evalkit.runs.store import open_run
from tests.adapters.image_server import COST, NATIVE_PATH, SERVER_LATENCY_MS, ImageServer, native_pixels

KEY = "sk-evalkit-test-SECRET-9f8e7d6c5b4a"
FAST = ["--opt", "backoff=0.01", "--opt", "backoff_max=0.05", "--opt", "timeout=0.5"]  # tests wait on purpose only


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVALKIT_HTTP_API_KEY", KEY)


def prompt_file(tmp_path: Path, n: int) -> tuple[Path, list[str]]:
    prompts = [f"prompt {i}: a red cube left of a blue ball" for i in range(n)]
    path = tmp_path / "prompts.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "category"])
        writer.writerows([p, "Test"] for p in prompts)
    return path, prompts


def run(capsys, url: str, prompts: Path, out: Path, *opts: str, images: int = 1, size: str = "16x24",
        batch: int = 8) -> tuple[int, str, str]:
    code = main(["run", "--model", "http", "--opt", f"url={url}", "--prompts", str(prompts), "--out", str(out),
                 "--images-per-prompt", str(images), "--size", size, "--batch-size", str(batch), "--quiet", *opts])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_key_absent(*places: Path | str) -> None:
    """The key is in no file under the given folders, and in no given text."""
    for place in places:
        if isinstance(place, Path):
            files = [p for p in place.rglob("*") if p.is_file()] if place.is_dir() else [place]
            for path in files:
                assert KEY.encode() not in path.read_bytes(), path
        else:
            assert KEY not in place


def cache_entries(folder: Path) -> list[Path]:
    """Complete cache entries (evalkit.atomic's temp files start with a dot until they are renamed)."""
    return [p for p in folder.rglob("*.json") if not p.name.startswith(".")]


def assert_images_are_the_servers(run_dir: Path, height: int, width: int) -> None:
    run = open_run(run_dir)
    for record in run.records():
        with Image.open(run.image_path(record)) as image:
            assert image.size == (width, height)
            assert image.tobytes() == native_pixels(record.prompt, record.seed, width, height), record


def test_native_contract_end_to_end_then_a_rerun_sends_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "cache"))  # the default cache: <evalkit cache>/http
    prompts, texts = prompt_file(tmp_path, 3)
    with ImageServer(expected_key=KEY) as server:
        url = server.base + NATIVE_PATH
        code, out, err = run(capsys, url, prompts, tmp_path / "a", "--opt", "extra.steps=30", "--opt",
                             "extra.style=vivid", "--opt", 'extra.tag="007"', images=2)
        assert code == 0, err
        run_dir = Path(out.strip().splitlines()[-1])
        assert_images_are_the_servers(run_dir, 16, 24)
        assert server.count() == 6 and all(server.successes[p] == 2 for p in texts)
        body = server.requests[0]["body"]
        assert set(body) == {"prompt", "seed", "width", "height", "n", "steps", "style", "tag"}
        assert (body["width"], body["height"], body["n"], body["steps"], body["style"], body["tag"]) == \
            (24, 16, 1, 30, "vivid", "007")
        assert server.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"

        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["adapter"]["config"] == {"api": "native", "endpoint": url, "model": None, "seed_reproducible": True,
                                                 "extra": {"steps": 30, "style": "vivid", "tag": "007"}}
        timings = open_run(run_dir).generation_timings()
        details = [d for t in timings for d in t["image_details"]]
        assert {t["device"] for t in timings} == {"remote:" + server.base.removeprefix("http://")}
        assert [(d["cost"], d["server_latency_ms"], d["attempts"], d["cached"]) for d in details] == \
            [(COST, SERVER_LATENCY_MS, 1, False)] * 6
        assert all(d["latency_ms"] > 0 for d in details)
        summary = generation_efficiency(timings)
        assert summary["cost_total"] == pytest.approx(6 * COST) and summary["n_images_with_cost"] == 6
        assert len(cache_entries(tmp_path / "cache" / "http")) == 6  # one per (prompt, sample)

        # another run directory, the same requests: all six come from the cache, byte for byte
        code, out, err = run(capsys, url, prompts, tmp_path / "b", "--opt", "extra.steps=30", "--opt",
                             "extra.style=vivid", "--opt", 'extra.tag="007"', images=2)
        assert code == 0, err
        assert server.count() == 6
        rerun_dir = Path(out.strip().splitlines()[-1])
        assert_images_are_the_servers(rerun_dir, 16, 24)
        rerun_details = [d for t in open_run(rerun_dir).generation_timings() for d in t["image_details"]]
        assert all(d["cached"] and d["cost"] == COST for d in rerun_details)
        # a changed extra field is another request
        code, _, err = run(capsys, url, prompts, tmp_path / "c", "--opt", "extra.steps=31", images=1)
        assert code == 0, err
        assert server.count() == 9
    assert_key_absent(tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "cache", out, err)


FAULTS = ["429:1", "500", "503", "slow", "reset", "not_json", "no_images", "bad_base64", "not_image", "truncated"]


def test_every_injected_fault_is_retried_to_success(capsys, tmp_path):
    prompts, texts = prompt_file(tmp_path, len(FAULTS))
    with ImageServer(expected_key=KEY) as server:
        for prompt, fault in zip(texts, FAULTS):
            server.script(prompt, fault)
        started = time.monotonic()
        code, out, err = run(capsys, server.base + NATIVE_PATH, prompts, tmp_path / "runs", *FAST,
                             "--opt", "cache_dir=" + str(tmp_path / "cache"), "--opt", "concurrency=9")
        assert code == 0, err
        assert time.monotonic() - started < 20
        run_dir = Path(out.strip().splitlines()[-1])
        assert_images_are_the_servers(run_dir, 16, 24)
        assert sorted(p.name for p in (run_dir / "images").iterdir()) == [f"{i:05d}_00.png" for i in range(len(FAULTS))]
        for prompt in texts:  # one failed attempt, one success: every image exactly once
            assert server.count(prompt) == 2 and server.successes[prompt] == 1, prompt
        attempts = {t["keys"][i][0]: d["attempts"] for t in open_run(run_dir).generation_timings()
                    for i, d in enumerate(t["image_details"])}
        assert attempts == {i: 2 for i in range(len(FAULTS))}
        limited = [r["at"] for r in server.requests if r["body"].get("prompt") == texts[0]]
        assert limited[1] - limited[0] >= 0.95  # Retry-After: 1 was honoured, though backoff is 0.01 s
    assert_key_absent(tmp_path, out, err)


@pytest.mark.parametrize("faults, expected, sent", [
    (["500"] * 9, r"gave up after 3 attempts \(--opt max_retries=2\); the last: HTTP 500 Internal Server Error: "
                  r"injected 500", 3),
    (["slow"] * 9, r"gave up after 3 attempts .*the last: timed out after 0.5 s", 3),
    (["wrong_size"], r"the server returned a 25x16 image but 24x16 \(width x height\) was asked for", 1),
    (["400"], r"HTTP 400 Bad Request: injected 400", 1),
    (["429:9999"], r"HTTP 429 Too Many Requests: rate limited, and the server asks to retry after 9999 s, more than "
                   r"--opt retry_after_max=600", 1),
])
def test_a_fault_that_persists_is_one_line_and_exit_2(capsys, tmp_path, faults, expected, sent):
    prompts, texts = prompt_file(tmp_path, 3)
    with ImageServer(expected_key=KEY) as server:
        server.script(texts[1], *faults)
        code, out, err = run(capsys, server.base + NATIVE_PATH, prompts, tmp_path / "runs", *FAST,
                             "--opt", "max_retries=2", "--opt", "cache_dir=" + str(tmp_path / "cache"))
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("evalkit: error: http model, prompt 1 sample 0: "), err
        assert __import__("re").search(expected, err), err
        assert f"(POST {server.base}{NATIVE_PATH})" in err
        assert server.count(texts[1]) == sent
        # the other prompts' images were paid for: cached, so the rerun (fault gone) asks only for prompt 1
        with server.lock:
            server.faults.clear()
        code, out2, err2 = run(capsys, server.base + NATIVE_PATH, prompts, tmp_path / "runs", *FAST,
                               "--opt", "cache_dir=" + str(tmp_path / "cache"))
        assert code == 0, err2
        assert all(server.successes[p] == 1 for p in texts)
        assert_images_are_the_servers(Path(out2.strip().splitlines()[-1]), 16, 24)
    assert_key_absent(tmp_path, out, err, out2, err2)


def test_a_bad_key_is_reported_without_the_key_even_when_the_server_echoes_it(capsys, tmp_path, monkeypatch):
    prompts, _ = prompt_file(tmp_path, 1)
    with ImageServer(expected_key="sk-the-right-one", echo_key_on_401=True) as server:
        code, out, err = run(capsys, server.base + NATIVE_PATH, prompts, tmp_path / "runs", *FAST,
                             "--opt", "cache_dir=" + str(tmp_path / "cache"))
        assert server.count() == 1 and KEY in server.requests[0]["headers"]["Authorization"]  # sent, not retried
    assert code == 2 and err.count("\n") == 1
    assert "HTTP 401 Unauthorized: Incorrect API key provided: Bearer [redacted]" in err, err
    assert "(the key from $EVALKIT_HTTP_API_KEY was sent)" in err
    assert_key_absent(tmp_path, out, err)


def test_openai_contract(capsys, tmp_path):
    prompts, texts = prompt_file(tmp_path, 2)
    with ImageServer(expected_key=KEY) as server:
        code, out, err = run(capsys, server.base + "/v1", prompts, tmp_path / "a", "--opt", "api=openai",
                             "--opt", "model=dall-e-2", "--opt", "extra.quality=hd",
                             "--opt", "cache_dir=" + str(tmp_path / "cache"), images=2, size="16x24")
        assert code == 0, err
        assert {r["path"] for r in server.requests} == {"/v1/images/generations"}
        body = server.requests[0]["body"]
        assert body == {"model": "dall-e-2", "prompt": body["prompt"], "n": 1, "size": "24x16",
                        "response_format": "b64_json", "quality": "hd"}  # WxH, and no seed
        run_dir = Path(out.strip().splitlines()[-1])
        config = json.loads((run_dir / "manifest.json").read_text())["adapter"]["config"]
        assert config["seed_reproducible"] is False and config["endpoint"] == server.base + "/v1/images/generations"
        images = {p.name: Image.open(p).tobytes() for p in (run_dir / "images").iterdir()}
        assert len(set(images.values())) == 4  # two samples of one prompt are two requests, two images
        details = [d for t in open_run(run_dir).generation_timings() for d in t["image_details"]]
        assert {d["revised_prompt"] for d in details} == {f"revised: {p}" for p in texts}
        assert all(d["cost"] is None for d in details)  # that API reports none

        code, out, err = run(capsys, server.base + "/v1", prompts, tmp_path / "b", "--opt", "api=openai",
                             "--opt", "model=dall-e-2", "--opt", "extra.quality=hd",
                             "--opt", "cache_dir=" + str(tmp_path / "cache"), images=2, size="16x24")
        assert code == 0 and server.count() == 4  # seedless, so only the cache gives the same images again
        again = {p.name: Image.open(p).tobytes() for p in (Path(out.strip().splitlines()[-1]) / "images").iterdir()}
        assert again == images
    assert_key_absent(tmp_path, out, err)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_limit(capsys, tmp_path, concurrency):
    prompts, _ = prompt_file(tmp_path, 6)
    with ImageServer(delay=0.15) as server:
        code, _, err = run(capsys, server.base + NATIVE_PATH, prompts, tmp_path / "runs", "--opt", "cache=false",
                           "--opt", f"concurrency={concurrency}")
        assert code == 0, err
        assert server.count() == 6 and server.max_in_flight == concurrency


def test_requests_per_minute(capsys, tmp_path):
    prompts, _ = prompt_file(tmp_path, 5)
    with ImageServer() as server:
        code, _, err = run(capsys, server.base + NATIVE_PATH, prompts, tmp_path / "runs", "--opt", "cache=false",
                           "--opt", "concurrency=5", "--opt", "rpm=300")  # one each 0.2 s, though 5 may fly at once
        assert code == 0, err
        arrivals = sorted(r["at"] for r in server.requests)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert len(arrivals) == 5 and min(gaps) >= 0.12 and arrivals[-1] - arrivals[0] >= 0.75, gaps


def test_a_killed_run_never_pays_twice(capsys, tmp_path):
    """kill -9 while a batch is half answered: the answered requests are in the cache, the rerun asks only for
    the rest (the run directory saves a batch's images only once the whole batch is back)."""
    prompts, texts = prompt_file(tmp_path, 4)
    with ImageServer() as server:
        server.hold.clear()
        server.script(texts[3], "hold")
        url, cache = f"url={server.base}{NATIVE_PATH}", f"cache_dir={tmp_path / 'cache'}"
        command = [sys.executable, "-m", "evalkit", "run", "--model", "http", "--opt", url, "--opt", cache,
                   "--prompts", str(prompts), "--out", str(tmp_path / "runs"), "--images-per-prompt", "1",
                   "--size", "16x24", "--quiet"]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while sum(server.successes.values()) < 3 or len(cache_entries(tmp_path / "cache")) < 3:
            assert time.monotonic() < deadline and child.poll() is None, child.communicate()
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        _, killed_err = child.communicate()
        server.hold.set()
        run_dirs = list((tmp_path / "runs").iterdir())
        assert len(run_dirs) == 1 and not list((run_dirs[0] / "images").glob("*.png"))  # nothing saved yet
        code, out, err = run(capsys, url.removeprefix("url="), prompts, tmp_path / "runs", "--opt", cache)
        assert code == 0, err
        assert [server.successes[p] for p in texts] == [1, 1, 1, 2]  # prompt 3's held reply went to the dead run
        assert_images_are_the_servers(run_dirs[0], 16, 24)
    assert_key_absent(tmp_path, out, err, killed_err.decode())
