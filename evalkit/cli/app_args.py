"""The rating app's command line (`streamlit run app.py -- --db study.sqlite [--admin-token TOKEN]`): parsed here,
with the other argparse code, and handed to evalkit.rating.webapp as plain values."""

from __future__ import annotations

import argparse
import os
import sys

from evalkit.errors import EvalkitError

MIN_ADMIN_TOKEN = 16


def app_settings(argv: list[str] | None = None) -> tuple[str, str | None]:
    """(study database path, admin token or None) from the app's arguments or EVALKIT_STUDY_DB / EVALKIT_ADMIN_TOKEN."""
    parser = argparse.ArgumentParser(prog="streamlit run app.py --")
    parser.add_argument("--db", default=os.environ.get("EVALKIT_STUDY_DB"))
    parser.add_argument("--admin-token", default=os.environ.get("EVALKIT_ADMIN_TOKEN"))
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if not args.db:
        raise EvalkitError("no study database: pass `-- --db study.sqlite` or set EVALKIT_STUDY_DB")
    token = args.admin_token or None
    if token is not None and len(token) < MIN_ADMIN_TOKEN:
        raise EvalkitError(f"the admin token must be at least {MIN_ADMIN_TOKEN} characters; admin page disabled")
    return args.db, token
