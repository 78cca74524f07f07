"""`cdt --fleet`: the command line's fleet commands, each a few lines over `fleet.api`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from clandestino.errors import ClandestinoError, UsageError
from clandestino.events import EventSink
from clandestino.fleet.api import FleetOptions, rollback_fleet, run_fleet
from clandestino.fleet.report import FleetReport
from clandestino.fleet.targets import FleetSource

__all__ = ["run_fleet_command"]


class FleetFailed(ClandestinoError):
    """Some targets of the fleet failed (named in the summary above)."""

    exit_code = 1


def _source(args: argparse.Namespace) -> FleetSource | None:
    if args.targets is None and args.targets_query is None and args.targets_from is None:
        return None  # the settings name it
    return FleetSource(file=args.targets, query=args.targets_query, callable=args.targets_from)


def _options(args: argparse.Namespace) -> FleetOptions:
    if args.concurrency is not None and args.concurrency < 1:
        raise UsageError("--concurrency takes a whole number of at least 1", "see `cdt -h`")
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    return FleetOptions(
        concurrency=args.concurrency or 4,
        on_error=args.on_error,
        target=args.target,
        only=only,
        failed=args.failed,
    )


def _sink(args: argparse.Namespace, out: TextIO) -> EventSink:
    from clandestino.fleet.render import FleetJsonRenderer, FleetTextRenderer
    from clandestino.output import TextRenderer, wants_colour

    if args.json:
        return FleetJsonRenderer(out)
    single = TextRenderer(out, sys.stderr, wants_colour(out, os.environ))
    return FleetTextRenderer(out, single, terminal=out.isatty())


async def run_fleet_command(args: argparse.Namespace, out: TextIO) -> int:
    from clandestino.api import settings_for

    if args.dry_run or args.repair or args.baseline or args.create:
        raise UsageError("--fleet goes with -m, -lm and -rm", "see `cdt -h`")
    settings = settings_for(args.dir, None, None, None)
    options = _options(args)
    emit = _sink(args, out)
    source = _source(args)
    if args.list:
        report = await run_fleet(settings, source, options, "status", emit)
        return 1 if report.failed or (args.check and not _all_clean(report)) else 0
    if args.migrate:
        report = await run_fleet(
            settings, source, options, "up", emit, to=args.to, strict=args.strict
        )
        return _exit(report)
    steps = args.steps or args.rollback or None

    async def confirm(names: list[str]) -> bool:
        return _confirm_rollback(args, len(names), steps)

    report = await rollback_fleet(
        settings,
        source,
        options,
        emit,
        steps=steps,
        to=args.to,
        confirm=None if args.yes else confirm,
    )
    if report.cancelled:
        print("Roll back cancelled: nothing changed", file=out)
        return 0
    return _exit(report)


def _all_clean(report: FleetReport) -> bool:
    return all(o.state is not None and o.state.clean for o in report.outcomes)


def _exit(report: FleetReport) -> int:
    return 0 if report.ok else 1


def _confirm_rollback(args: argparse.Namespace, count: int, steps: int | None) -> bool:
    from clandestino.cli import _confirmed

    what = f"everything after {args.to}" if args.to else f"the last {steps or 1} migration(s)"
    return _confirmed(
        "-rm --fleet", f"You really want to roll back {what} on each of {count} targets? y/N: "
    )
