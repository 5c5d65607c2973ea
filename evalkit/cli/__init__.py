"""The `evalkit` command. Each sub-command lives in its own module exposing ``register(subparsers)``.

Handlers import heavy libraries (torch, pandas) lazily so that `evalkit --help` and bad-input errors are instant.
A handler returns an exit code (or None for 0); an ``EvalkitError`` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

from evalkit import __version__
from evalkit.errors import EvalkitError

# Order is the order shown in `evalkit --help`.
COMMAND_MODULES = [
    "evalkit.cli.run_cmd",
    "evalkit.cli.benchmarks_cmd",
    "evalkit.cli.runs_cmd",
    "evalkit.cli.train_cmd",
    "evalkit.cli.study_cmd",
    "evalkit.cli.metrics_cmd",
    "evalkit.cli.check_cmd",
    "evalkit.cli.report_cmd",
    "evalkit.cli.weights_cmd",
]


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line (plus a pointer to --help) instead of argparse's usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="evalkit", description="Evaluate text-to-image models the way the Imagen paper did.")
    parser.add_argument("--version", action="version", version=f"evalkit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"evalkit: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning  # users see what happened, not our source lines
    parser = build_parser()
    args = parser.parse_args(argv)
    from evalkit import dist

    world = dist.World()
    try:
        world = dist.start_command(args.command, getattr(args, "device", None))
        with _quiet_unless_main(world):
            code = args.handler(args)
    except dist.RankFailure as error:  # raised on every rank alike: said once
        if world.is_main:
            print(f"evalkit: error: {error}", file=sys.stderr)
        return 2
    except EvalkitError as error:
        where = f"rank {world.rank} of {world.size}: " if world.distributed else ""
        print(f"evalkit: error: {where}{error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        dist.end_command()
    return int(code or 0)


@contextlib.contextmanager
def _quiet_unless_main(world):
    """Under torchrun only rank 0 prints results (every rank computes the same ones); errors still reach stderr."""
    if world.is_main:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def run() -> None:  # console-script entry point
    sys.exit(main())
