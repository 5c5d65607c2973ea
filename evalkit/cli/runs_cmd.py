"""`evalkit runs list|show|verify`: what runs exist, what each holds, and whether its images are intact."""

from __future__ import annotations

import json
import os


def register(subparsers) -> None:
    parser = subparsers.add_parser("runs", help="list runs, show one, or verify its images")
    sub = parser.add_subparsers(dest="runs_command", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser("list", help="the runs under --out")
    listing.add_argument("--out", default=os.environ.get("EVALKIT_RUNS", "runs"), help="root folder of runs")
    listing.set_defaults(handler=handle_list)
    show = sub.add_parser("show", help="one run's manifest summary, categories and metrics")
    show.add_argument("run", help="run directory")
    show.add_argument("--json", action="store_true", help="print the manifest as JSON")
    show.set_defaults(handler=handle_show)
    verify = sub.add_parser("verify", help="check every image against the sha256 in the run's index "
                                           "(exit 0 intact, 1 mismatch, 2 error)")
    verify.add_argument("run", help="run directory")
    verify.add_argument("--record", action="store_true",
                        help="first record the hashes of images that have none (a run made before hashes were kept)")
    verify.set_defaults(handler=handle_verify)


def handle_list(args) -> int:
    from evalkit.runs.store import list_runs

    runs = list_runs(args.out)
    if not runs:
        print(f"no runs under {args.out}")
        return 0
    print(f"{'run':48s} {'benchmark':10s} {'model':10s} {'images':>13s}  status")
    for run in runs:
        m = run.manifest
        done = len(run.completed_records())
        model, total = (m.get("adapter") or {}).get("name", "?"), str(m.get("n_images", "?"))
        print(f"{run.run_id:48s} {run.benchmark:10s} {model:10s} {done:6d}/{total:<6s}  {m.get('status', '?')}")
    return 0


def handle_verify(args) -> int:
    from evalkit.runs.integrity import record_missing_hashes, verify_run
    from evalkit.runs.store import open_run

    run = open_run(args.run)
    if args.record:
        print(f"recorded {record_missing_hashes(run)} image hashes")
    result = verify_run(run)
    for line in result.lines():
        print(line)
    return 0 if result.ok else 1


def handle_show(args) -> int:
    from evalkit.runs.store import open_run

    run = open_run(args.run)
    m = run.manifest
    if args.json:
        print(json.dumps(m, indent=2, ensure_ascii=False))
        return 0
    done = len(run.completed_records())
    print(f"run:        {run.run_id}  ({run.path})")
    bench, adapter = m["benchmark"], m.get("adapter") or {}  # checked by open_run; a short manifest shows '?'
    print(f"status:     {m.get('status')}  {done}/{m.get('n_images', '?')} images")
    print(f"benchmark:  {bench['name']}  {bench.get('prompts', '?')} prompts  {bench['content_hash'][:23]}")
    print(f"model:      {adapter.get('name', '?')}  checkpoint {str(adapter.get('checkpoint_hash'))[:23]}")
    print(f"images:     {m.get('images_per_prompt', '?')} per prompt, {m.get('width', '?')}x{m.get('height', '?')}, "
          f"seed {m.get('seed', '?')}")
    print(f"created:    {m.get('created_at')}  git {str((m.get('git') or {}).get('commit'))[:12]}")
    categories = m["benchmark"].get("categories") or {}
    if len(categories) > 1:
        print("categories:")
        for category, count in categories.items():
            print(f"  {category:20s} {count:5d} prompts")
    metrics_file = run.path / "metrics.json"
    if metrics_file.is_file():
        print(f"metrics:    {metrics_file}")
    return 0
