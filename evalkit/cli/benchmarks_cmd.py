"""`evalkit benchmarks list|show`: what prompt sets exist and what is in them."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("benchmarks", help="list benchmarks or show one's categories")
    sub = parser.add_subparsers(dest="benchmarks_command", metavar="ACTION")
    sub.required = True
    listing = sub.add_parser("list", help="the known benchmarks")
    listing.set_defaults(handler=handle_list)
    show = sub.add_parser("show", help="categories and counts of one benchmark")
    show.add_argument("name")
    show.add_argument("--prompts", help="read this file instead of the resolved copy")
    show.set_defaults(handler=handle_show)


def handle_list(args) -> int:
    from evalkit.benchmarks.registry import list_benchmarks

    found = list_benchmarks()
    width = max(map(len, found), default=0)
    for name, description in found.items():
        print(f"{name:{width}s}  {description}")
    return 0


def handle_show(args) -> int:
    from evalkit.benchmarks.registry import load_benchmark

    benchmark = load_benchmark(args.name, args.prompts)
    categories = benchmark.categories()
    print(f"{benchmark.name}: {len(benchmark.rows)} prompts, {len(categories)} categories")
    print(f"source: {benchmark.source}")
    print(f"content hash: {benchmark.content_hash}")
    width = max((len(c) for c in categories), default=8)
    for category, count in categories.items():
        print(f"  {category or '(none)':{width}s}  {count:6d}")
    return 0
