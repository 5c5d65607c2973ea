"""The ``command`` adapter: any program, in any language or environment, that follows a JSON-in / PNG-out contract.

    evalkit run drawbench --model command --model-path "conda run -n mymodel python gen.py" \\
        --opt timeout=1800 --opt steps=30

The command comes from ``--model-path`` or ``--opt cmd=...`` (not both). It is split with shell quoting rules
(``shlex``) and started directly, without a shell, in evalkit's working directory with evalkit's environment.
It is started once per batch:

1. evalkit writes one JSON object (UTF-8) to the command's stdin, then closes stdin::

       {"prompts": ["a red cube", ...],      # the batch, in order
        "seeds": [1234, ...],                # one 31-bit seed per image
        "height": 256, "width": 256,         # the size every image must have
        "keys": [[12, 0], ...],              # (prompt row index, sample) per image, or null
        "output_dir": "/tmp/evalkit-cmd-x",  # an empty directory, deleted after the batch
        "options": {"steps": "30"}}          # every --opt except cmd and timeout, as strings

2. The command writes image n (for prompts[n]) to ``output_dir/{n}.png`` for n = 0 .. len(prompts) - 1, and
   exits with status 0. Alternatively its last non-empty stdout line is a JSON object ``{"images": [path, ...]}``
   with one path per prompt, in order (relative paths are relative to output_dir); other stdout lines are ignored,
   so the command may log freely. Any format Pillow reads is accepted and converted to RGB.

3. The same (prompt, seed, size, options) must give the same image: evalkit resumes runs by regenerating only
   missing images and relies on that.

A nonzero exit status, a timeout (``--opt timeout=SECONDS`` per batch, default 3600, 0 for none; the whole
process group is killed), or a missing, unreadable or wrong-size image stops the run with an error that quotes
the last lines of the command's stderr. ``config()`` records the command and its options, so changing either
makes a new run; ``checkpoint_hash()`` is None because evalkit cannot see the command's weights: pass a
checkpoint name or version as an ``--opt`` so it is recorded. Without ``--size`` images are 256x256.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from evalkit.adapters.base import AdapterOptions, GenerationBatch, finite_float, read_option
from evalkit.errors import EvalkitError
from evalkit.images import UnreadableImage, open_rgb

DEFAULT_TIMEOUT_S = 3600.0
MAX_TIMEOUT_S = 30 * 24 * 3600
STDERR_TAIL_LINES = 15


def parse_command(options: AdapterOptions) -> list[str]:
    given = [text for text in (options.model_path, options.extra.get("cmd")) if text]
    if not given:
        raise EvalkitError('the command adapter needs the command: --model-path "PROGRAM ARGS..." or --opt cmd=...')
    if len(given) == 2:
        raise EvalkitError("give the command either as --model-path or as --opt cmd=..., not both")
    try:
        argv = shlex.split(given[0])
    except ValueError as error:
        raise EvalkitError(f"cannot parse the command {given[0]!r}: {error}") from None
    if not argv:
        raise EvalkitError("the command is empty")
    program = argv[0]
    if os.sep in program:
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise EvalkitError(f"command {program!r} is not an executable file")
    elif shutil.which(program) is None:
        raise EvalkitError(f"command {program!r} not found on PATH")
    return argv


def stderr_tail(stderr: bytes | None) -> str:
    lines = (stderr or b"").decode("utf-8", errors="replace").rstrip().splitlines()[-STDERR_TAIL_LINES:]
    return "\n  stderr (last lines):\n    " + "\n    ".join(lines) if lines else "\n  (stderr was empty)"


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the command and anything it started (it leads its own session), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def run_command(argv: list[str], request: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
    """Run once with ``request`` on stdin; returns (exit status, stdout, stderr)."""
    try:
        # Own session: a timeout or Ctrl-C can kill the whole tree, and pipes are not held open by orphans.
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as error:
        raise EvalkitError(f"cannot start {argv[0]!r}: {error.strerror or error}") from None
    try:
        stdout, stderr = process.communicate(request, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        raise EvalkitError(f"command {shlex.join(argv)} timed out after {timeout:g} s{stderr_tail(stderr)}") from None
    except BaseException:
        _kill_group(process)
        raise
    return process.returncode, stdout, stderr


def _listed_images(stdout: bytes, output_dir: Path, count: int) -> list[Path] | None:
    """The paths from a final ``{"images": [...]}`` stdout line, or None when the command printed none."""
    lines = [line for line in stdout.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if not lines:
        return None
    try:
        reply = json.loads(lines[-1])
    except ValueError:
        return None
    if not isinstance(reply, dict) or "images" not in reply:
        return None
    paths = reply["images"]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or len(paths) != count:
        raise EvalkitError(f'the command printed {{"images": ...}} but not a list of {count} paths: {lines[-1][:200]}')
    return [output_dir / p for p in paths]  # an absolute p replaces output_dir


class CommandAdapter:
    name = "command"
    default_size = (256, 256)  # the command decides what it can make; --size overrides

    def __init__(self, options: AdapterOptions):
        self.argv = parse_command(options)
        timeout = read_option(options, "timeout", DEFAULT_TIMEOUT_S, finite_float)
        if not 0 <= timeout <= MAX_TIMEOUT_S:  # a larger one overflows the OS's wait
            raise EvalkitError(f"--opt timeout must be >= 0 seconds and at most {MAX_TIMEOUT_S:,} (0 = no limit), "
                               f"got {timeout:g}")
        self.timeout = timeout or None
        self.options = {k: v for k, v in sorted(options.extra.items()) if k not in ("cmd", "timeout")}

    def config(self) -> dict[str, Any]:
        return {"command": self.argv, "options": self.options}

    def checkpoint_hash(self) -> str | None:
        return None

    def generate(self, batch: GenerationBatch) -> list[Image.Image]:
        with tempfile.TemporaryDirectory(prefix="evalkit-cmd-") as tmp:
            output_dir = Path(tmp)
            request = {
                "prompts": list(batch.prompts),
                "seeds": [int(s) for s in batch.seeds],
                "height": batch.height,
                "width": batch.width,
                "keys": [list(k) for k in batch.keys] if batch.keys is not None else None,
                "output_dir": str(output_dir),
                "options": self.options,
            }
            status, stdout, stderr = run_command(
                self.argv, json.dumps(request, ensure_ascii=False).encode("utf-8"), self.timeout
            )
            shown = shlex.join(self.argv)
            if status != 0:
                raise EvalkitError(f"command {shown} failed with exit status {status}{stderr_tail(stderr)}")
            paths = _listed_images(stdout, output_dir, len(batch.prompts))
            if paths is None:
                paths = [output_dir / f"{n}.png" for n in range(len(batch.prompts))]
            return [self._read(path, batch, shown, stderr) for path in paths]

    @staticmethod
    def _read(path: Path, batch: GenerationBatch, shown: str, stderr: bytes) -> Image.Image:
        if not path.is_file():
            raise EvalkitError(f"command {shown} exited 0 but did not write {path}{stderr_tail(stderr)}")
        try:
            rgb = open_rgb(path)  # loads the pixels before the temp dir goes away
        except UnreadableImage as error:
            raise EvalkitError(f"command {shown} wrote {path}, which is not a readable image ({error.reason})") from None
        if rgb.size != (batch.width, batch.height):
            raise EvalkitError(
                f"command {shown} wrote {path.name} at {rgb.height}x{rgb.width} (height x width) but "
                f"{batch.height}x{batch.width} was asked for{stderr_tail(stderr)}"
            )
        return rgb


def create(options: AdapterOptions) -> CommandAdapter:
    return CommandAdapter(options)
