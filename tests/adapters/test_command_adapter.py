"""The command adapter against a small Python program that follows (or, on request, breaks) the documented contract."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import sys
import textwrap
import time

import pytest

from evalkit.adapters import AdapterOptions, GenerationBatch, create_adapter
from evalkit.errors import EvalkitError

# Image n is random bytes from random.Random(seed): a pure function of the seed that the test recomputes.
PROGRAM = textwrap.dedent(
    """
    import json, os, random, subprocess, sys, time
    from PIL import Image

    request = json.load(sys.stdin)
    options = request["options"]
    mode = options.get("mode", "ok")
    if "record" in options:
        with open(options["record"], "w") as f:
            json.dump({**request, "output_dir_existed": os.path.isdir(request["output_dir"])}, f)
    for line in range(30):
        print(f"log line {line}", file=sys.stderr)
    if mode == "fail":
        print("CUDA out of memory (pretend)", file=sys.stderr)
        sys.exit(3)
    if mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(options["pidfile"], "w") as f:
            f.write(str(child.pid))
        time.sleep(60)
    h, w = request["height"], request["width"]
    paths = []
    for n, seed in enumerate(request["seeds"]):
        size = (w + 1, h) if mode == "wrong_size" else (w, h)
        image = Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))
        name = f"image-{n}.png" if mode == "json" else f"{n}.png"
        if mode == "missing" and n == len(request["seeds"]) - 1:
            continue
        if mode == "garbage":
            open(os.path.join(request["output_dir"], name), "wb").write(b"no png here")
            continue
        image.save(os.path.join(request["output_dir"], name))
        paths.append(name)
    if mode == "json":
        print("loading weights... done")
        print(json.dumps({"images": paths}))
    if mode == "short_json":
        print(json.dumps({"images": paths[:-1]}))
    """
)


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmd") / "fake_model.py"
    path.write_text(PROGRAM)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def expected(seed: int, height: int, width: int) -> bytes:
    return random.Random(seed).randbytes(width * height * 3)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for whoever adopted it to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def make(command, model_path=True, **extra):
    if model_path:
        return create_adapter("command", AdapterOptions(model_path=command, extra=extra))
    return create_adapter("command", AdapterOptions(extra={"cmd": command, **extra}))


def test_happy_path_sends_the_documented_request(program, tmp_path):
    record = tmp_path / "request.json"
    adapter = make(program, record=str(record), steps="30")
    batch = GenerationBatch(["a red cube", "ein Würfel"], [5, 6], 12, 20, keys=((3, 0), (3, 1)))
    images = adapter.generate(batch)
    assert [(im.mode, im.size) for im in images] == [("RGB", (20, 12))] * 2
    assert [im.tobytes() for im in images] == [expected(5, 12, 20), expected(6, 12, 20)]

    request = json.loads(record.read_text())
    assert request["prompts"] == ["a red cube", "ein Würfel"]
    assert (request["seeds"], request["height"], request["width"]) == ([5, 6], 12, 20)
    assert request["keys"] == [[3, 0], [3, 1]]
    assert request["options"] == {"record": str(record), "steps": "30"}
    assert request["output_dir_existed"] and not os.path.exists(request["output_dir"])  # cleaned up afterwards
    assert adapter.config() == {"command": shlex.split(program), "options": {"record": str(record), "steps": "30"}}
    assert adapter.checkpoint_hash() is None


def test_same_seed_gives_the_same_bytes(program):
    adapter = make(program, model_path=False, timeout="60")
    assert adapter.config()["options"] == {}  # cmd and timeout are evalkit's, not the program's
    one = adapter.generate(GenerationBatch(["x", "y"], [42, 43], 8, 8))
    two = adapter.generate(GenerationBatch(["y", "x"], [43, 42], 8, 8))
    assert one[0].tobytes() == two[1].tobytes() and one[1].tobytes() == two[0].tobytes()
    assert one[0].tobytes() != one[1].tobytes()


def test_images_listed_on_the_last_stdout_line_are_used(program):
    images = make(program, mode="json").generate(GenerationBatch(["x", "y"], [1, 2], 8, 8))
    assert [im.tobytes() for im in images] == [expected(1, 8, 8), expected(2, 8, 8)]
    with pytest.raises(EvalkitError, match="not a list of 2 paths"):
        make(program, mode="short_json").generate(GenerationBatch(["x", "y"], [1, 2], 8, 8))


def test_failure_quotes_the_end_of_stderr(program):
    with pytest.raises(EvalkitError) as error:
        make(program, mode="fail").generate(GenerationBatch(["x"], [1], 8, 8))
    message = str(error.value)
    assert "exit status 3" in message and "CUDA out of memory (pretend)" in message
    assert "log line 29" in message and "log line 2\n" not in message  # only the last lines


@pytest.mark.parametrize(
    "mode, message",
    [
        ("missing", "exited 0 but did not write"),
        ("wrong_size", "wrote 0.png at 8x9 (height x width) but 8x8 was asked for"),
        ("garbage", "which is not a readable image"),
    ],
)
def test_bad_output_is_a_clear_error(program, mode, message):
    with pytest.raises(EvalkitError, match=re.escape(message)):
        make(program, mode=mode).generate(GenerationBatch(["x", "y"], [1, 2], 8, 8))


def test_timeout_kills_the_command_and_its_children(program, tmp_path):
    pidfile = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(EvalkitError, match=r"timed out after 1.5 s[\s\S]*log line 29"):
        make(program, mode="hang", timeout="1.5", pidfile=str(pidfile)).generate(GenerationBatch(["x"], [1], 8, 8))
    assert time.monotonic() - started < 30
    child = int(pidfile.read_text())
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {child} survived the timeout")


def test_bad_commands_and_options_are_clear_errors(program, tmp_path):
    with pytest.raises(EvalkitError, match="needs the command"):
        create_adapter("command", AdapterOptions())
    with pytest.raises(EvalkitError, match="not both"):
        create_adapter("command", AdapterOptions(model_path=program, extra={"cmd": program}))
    with pytest.raises(EvalkitError, match="cannot parse the command"):
        make('python "unclosed')
    with pytest.raises(EvalkitError, match="not found on PATH"):
        make("evalkit-no-such-program --flag")
    with pytest.raises(EvalkitError, match="not an executable file"):
        make(str(tmp_path / "missing.sh"))
    with pytest.raises(EvalkitError, match="--opt timeout='soon' is not a valid float"):
        make(program, timeout="soon")
    with pytest.raises(EvalkitError, match=">= 0 seconds"):
        make(program, timeout="-1")
