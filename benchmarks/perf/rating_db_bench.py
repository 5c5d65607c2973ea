"""The cost of a durable study: votes/s and vote latency with SQLite synchronous=NORMAL (default) vs FULL
(`evalkit study create --durable`), at several numbers of raters voting at once.

    python benchmarks/perf/rating_db_bench.py [--raters 1,8,50] [--votes 40] [--rounds 3] [--workers threads]
        [--dir DIR] -> reports/perf/rating_db.md

Each round builds a fresh study per mode and runs ``evalkit.experiments.rating_load.storage_load``: every rater on
its own connection (threads: Streamlit's sessions; processes: several servers), each trial voted (two rows) and
submitted again (refused, no row). The modes alternate within a round, so load from other users of the machine
hits both alike; medians over rounds. The study files live in ``--dir`` (default: the system's temporary
directory); its file system is recorded, because fsync is what FULL pays for (on tmpfs it would cost nothing).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evalkit.experiments.rating_load import storage_load  # noqa: E402

MODES = (("NORMAL", False), ("FULL", True))


def file_system(path: Path) -> str:
    """The type and device of the mount holding ``path`` (from /proc/mounts; 'unknown' elsewhere)."""
    best = ("", "unknown", "unknown")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            if str(path.resolve()).startswith(mount) and len(mount) > len(best[0]):
                best = (mount, kind, device)
    except OSError:
        pass
    return f"{best[1]} ({best[2]} on {best[0] or '?'})"


def measure(root: Path, raters: int, votes: int, rounds: int, workers: str) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {name: [] for name, _ in MODES}
    for number in range(rounds):
        order = MODES if number % 2 == 0 else MODES[::-1]
        for name, durable in order:
            folder = root / f"{raters}-{name}-{number}"
            result = storage_load(folder, raters, votes, workers, durable=durable, seed=number)
            if not result["ok"] or result["synchronous"] != name:
                raise SystemExit(f"round {number} {name}: {result}")
            runs[name].append(result)
            print(f"raters {raters:3d} {name:6s} round {number}: {result['vote_rows_per_s']:8.1f} rows/s, "
                  f"p95 {result['record_answers_ms']['p95']} ms", flush=True)
    return runs


def _median(results: list[dict], pick) -> float:
    return statistics.median(pick(r) for r in results)


def report(table: dict[int, dict[str, list[dict]]], args, where: str, load: tuple) -> str:
    lines = [
        "# Rating study database: synchronous=NORMAL vs FULL", "",
        f"`python benchmarks/perf/rating_db_bench.py --raters {args.raters} --votes {args.votes} --rounds "
        f"{args.rounds} --workers {args.workers}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPU cores, SQLite {sqlite3.sqlite_version}, study files on {where}; load average "
        f"{'/'.join(f'{x:.1f}' for x in load[0])} at the start, {'/'.join(f'{x:.1f}' for x in load[1])} at the end "
        "(the machine is shared).", "",
        f"Each rater votes on {args.votes} trials (2 rows each) and resubmits each trial once (refused). Medians of "
        f"{args.rounds} rounds; latency is one `record_answers` call (wait for the write lock + commit).", "",
        "| raters at once | NORMAL rows/s | FULL rows/s | FULL cost (x slower) | NORMAL p50 / p95 ms | "
        "FULL p50 / p95 ms | lost / duplicated |",
        "|---|---|---|---|---|---|---|",
    ]
    for raters, runs in table.items():
        rate = {name: _median(runs[name], lambda r: r["vote_rows_per_s"]) for name, _ in MODES}
        p50 = {name: _median(runs[name], lambda r: r["record_answers_ms"]["p50"]) for name, _ in MODES}
        p95 = {name: _median(runs[name], lambda r: r["record_answers_ms"]["p95"]) for name, _ in MODES}
        bad = sum(r["lost"] + r["duplicated"] for name, _ in MODES for r in runs[name])
        lines.append(f"| {raters} | {rate['NORMAL']:.0f} | {rate['FULL']:.0f} | {rate['NORMAL'] / rate['FULL']:.1f} | "
                     f"{p50['NORMAL']:.1f} / {p95['NORMAL']:.1f} | {p50['FULL']:.1f} / {p95['FULL']:.1f} | {bad} |")
    lines += ["", "A human rater submits a trial every few seconds at most, so even FULL's rate is far above what a "
              "study of tens of raters asks; FULL buys survival of confirmed votes through a power cut or a kernel "
              "crash (NORMAL in WAL mode already survives any crash of the app or its server)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raters", default="1,8,50", help="comma list of raters voting at once")
    parser.add_argument("--votes", type=int, default=40, help="trials per rater")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", choices=("threads", "processes"), default="threads")
    parser.add_argument("--dir", type=Path, default=None, help="where the study files go (default: temp dir)")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "perf" / "rating_db.md")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.raters.split(",") if x.strip()]
    if not counts or min(counts) < 1 or args.votes < 1 or args.rounds < 1:
        parser.error("--raters, --votes and --rounds must be positive")
    start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rating-db-bench-", dir=args.dir) as tmp:
        where = file_system(Path(tmp))
        table = {raters: measure(Path(tmp), raters, args.votes, args.rounds, args.workers) for raters in counts}
    from evalkit.experiments.common import write_report

    write_report(args.out, report(table, args, where, (start, os.getloadavg())))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
