"""The fleet's command-line options, apart from the rest so that parsing them imports nothing
(the parser is built by every `cdt` run, most of which are no fleet)."""

from __future__ import annotations

import argparse

__all__ = ["add_fleet_arguments", "fleet_requested"]


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fleet", action="store_true")
    parser.add_argument("--targets", metavar="FILE")
    parser.add_argument("--targets-query", metavar="PATTERN")
    parser.add_argument("--targets-from", metavar="MODULE:FUNCTION")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--on-error", choices=("continue", "stop"), default="continue")
    parser.add_argument("--target", metavar="NAME")
    parser.add_argument("--only", metavar="NAME,...")
    parser.add_argument("--failed", action="store_true")


def fleet_requested(args: argparse.Namespace) -> bool:
    """--fleet, or any option that only makes sense for one."""
    chosen = (args.targets, args.targets_query, args.targets_from, args.target, args.only)
    return bool(args.fleet or args.failed or any(v is not None for v in chosen))
