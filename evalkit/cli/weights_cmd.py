"""`evalkit weights list|fetch NAME|path NAME`: the network weights the metrics need."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="list, download or locate metric network weights")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    actions.add_parser("list", help="registry entries and whether each is present").set_defaults(handler=run_list)
    fetch = actions.add_parser("fetch", help="download NAME (sha256-verified) into the weights dir or cache")
    fetch.add_argument("name", metavar="NAME")
    fetch.set_defaults(handler=run_fetch)
    path = actions.add_parser("path", help="print the local file of NAME (error if absent)")
    path.add_argument("name", metavar="NAME")
    path.set_defaults(handler=run_path)


def run_list(args) -> int:
    from evalkit.errors import EvalkitError
    from evalkit.metrics import weights

    used_by = _extractors_by_weights()
    for name, spec in sorted(weights.REGISTRY.items()):
        try:
            where = str(weights.resolve(name))
        except EvalkitError:
            where = f"missing (expected at {weights.candidates(name)[0]})"
        digest = spec.sha256 or "not published (the file's hash is recorded with each result, not enforced)"
        users = ", ".join(used_by.get(name, [])) or "no built-in extractor by default"
        print(f"{name}\n  {spec.description}\n  used by: {users}\n  sha256 {digest}\n  {spec.url}\n  {where}")
    return 0


def _extractors_by_weights() -> dict[str, list[str]]:
    """Registry weight name -> the extractors that need it with their default settings."""
    from evalkit.errors import EvalkitError
    from evalkit.metrics import extractors

    found: dict[str, list[str]] = {}
    for name in extractors.available_extractors():
        try:
            for weight in extractors.extractor_weights(name):
                found.setdefault(weight, []).append(name)
        except EvalkitError:
            continue  # a broken plug-in does not hide the registry
    return found


def run_fetch(args) -> int:
    from evalkit.metrics import weights

    print(weights.fetch(args.name))
    return 0


def run_path(args) -> int:
    from evalkit.metrics import weights

    print(weights.resolve(args.name))
    return 0
