"""`evalkit study create|invite|export|summarize`: human pairwise rating studies (vote in `streamlit run app.py`)."""

from __future__ import annotations

import argparse
import json
import sys

from evalkit.cli.args import MAX_IMAGES_PER_PROMPT, float_range, int_range, repeats, seed


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser("study", help="human pairwise rating studies (create, invite, export, summarize)")
    commands = parser.add_subparsers(dest="study_command", metavar="STUDY_COMMAND")
    commands.required = True

    create = commands.add_parser("create", help="build a study's trials from two or more runs")
    create.add_argument("--runs", nargs="+", required=True, metavar="RUN", help="run directories, same benchmark")
    create.add_argument("--questions", default="quality,alignment", help="comma list of quality, alignment")
    create.add_argument("--set-size", type=int_range(1, MAX_IMAGES_PER_PROMPT), default=4, help="images per side (paper: 8)")
    create.add_argument("--db", required=True, help="SQLite file to create")
    create.add_argument("--control-fraction", type=_fraction, default=0.1,
                        help="share of all trials that are control (gold) trials (default 0.1)")
    create.add_argument("--control-threshold", type=_fraction, default=0.8,
                        help="raters passing fewer controls are excluded from summaries (default 0.8)")
    create.add_argument("--trials-per-rater", type=int_range(1, 10**9), default=None, help="cap per rater (default: all)")
    create.add_argument("--invite-only", action="store_true", help="raters must sign in with an invitation token")
    create.add_argument("--seed", type=seed, default=0)
    create.add_argument("--force", action="store_true", help="replace an existing study that has no votes yet")
    create.add_argument("--durable", action="store_true",
                        help="fsync every vote (SQLite synchronous=FULL) so confirmed votes survive a power cut; "
                             "slower under load (default: synchronous=NORMAL, safe against app and server crashes)")
    create.set_defaults(handler=_create)

    invite = commands.add_parser("invite", help="create raters with secret invitation tokens (printed once)")
    invite.add_argument("--db", required=True)
    invite.add_argument("--count", type=int_range(1, 10_000), default=1, help="raters to invite (at most 10,000)")
    invite.add_argument("--prefix", default="rater", help="rater id prefix")
    invite.add_argument("--valid-hours", type=float_range(1 / 3600, 24 * 365 * 100), default=None, metavar="H",
                        help="the tokens stop working H hours from now (default: no expiry)")
    invite.set_defaults(handler=_invite)

    export = commands.add_parser("export", help="write all votes to CSV or parquet")
    export.add_argument("--db", required=True)
    export.add_argument("--out", required=True, help="FILE.csv or FILE.parquet")
    export.set_defaults(handler=_export)

    summarize = commands.add_parser("summarize", help="preference per category with 95%% CIs, Bradley-Terry, agreement")
    summarize.add_argument("--db", required=True)
    summarize.add_argument("--json", action="store_true", help="print the summary as JSON")
    summarize.add_argument("--plot", metavar="FILE.png", help="also write a per-category preference chart")
    summarize.add_argument("--bootstrap", type=repeats, default=1000, help="bootstrap replicates")
    summarize.add_argument("--seed", type=seed, default=0)
    summarize.set_defaults(handler=_summarize)


def _create(args) -> int:
    from evalkit.rating.build import create_study
    from evalkit.rating.questions import parse_questions

    config = create_study(
        args.db, args.runs, parse_questions(args.questions), set_size=args.set_size,
        control_fraction=args.control_fraction, control_threshold=args.control_threshold, seed=args.seed,
        invite_only=args.invite_only, trials_per_rater=args.trials_per_rater, replace=args.force,
        durable=args.durable,
    )
    print(f"study {config['study_id']}: {config['prompts']} prompts, {config['real_trials']} trials + "
          f"{config['control_trials']} controls, questions {','.join(config['questions'])} -> {args.db}")
    print(f"raters vote in: streamlit run app.py -- --db {args.db}  (admin: --admin-token or EVALKIT_ADMIN_TOKEN)")
    return 0


def _invite(args) -> int:
    from datetime import datetime, timedelta, timezone

    from evalkit.rating import db
    from evalkit.rating.session import create_invitations

    expires_at = None if args.valid_hours is None else datetime.now(timezone.utc) + timedelta(hours=args.valid_hours)
    conn = db.connect(args.db)
    try:
        db.read_config(conn)
        for rater_id, token in create_invitations(conn, args.count, args.prefix, expires_at=expires_at):
            print(f"{rater_id}\t{token}")
    finally:
        conn.close()
    if expires_at is not None:
        print(f"valid until {expires_at.isoformat(timespec='seconds')}", file=sys.stderr)
    return 0


def _export(args) -> int:
    from evalkit.rating import db
    from evalkit.rating.votes import export_votes

    conn = db.connect(args.db)
    try:
        rows = export_votes(conn, args.out)
    finally:
        conn.close()
    print(f"{rows} votes -> {args.out}", file=sys.stderr)
    return 0


def _summarize(args) -> int:
    from evalkit.rating import db
    from evalkit.rating.summary import format_summary, summarize

    conn = db.connect(args.db)
    try:
        summary = summarize(conn, n_boot=args.bootstrap, seed=args.seed)
    finally:
        conn.close()
    if args.plot:
        from evalkit.rating.plot import plot_summary

        plot_summary(summary, args.plot)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
