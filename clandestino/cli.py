"""`cdt`: the original tool's options (-h, -m, -lm, -rm, -cm) with long forms and a few more.

The only module that prints, calls asyncio.run or decides the exit status. It imports the engine
lazily so that `cdt -h` loads no driver and stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, cast

from clandestino.errors import ClandestinoError, ConfigurationError, UsageError

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    from clandestino.events import EventSink

__all__ = ["main"]

# sysexits.h's EX_SOFTWARE: an exception Clandestino did not expect is a bug in the tool, which
# CI must be able to tell from a migration that failed (1).
EXIT_INTERNAL_ERROR = 70
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_HELP_OPTIONS = """\
    -h: Display help
    -m: Migrate database
    -lm: List migrations
    -rm: Rollback last migration
    -cm: Create database migration - params [name type]
"""
_HELP_MORE = """\
 Long forms: --help, --migrate, --list, --rollback [N], --create NAME [TYPE]
    -m --dry-run       print what would run, change nothing
    -m --to NAME       apply pending migrations up to and including NAME
    -m --strict        refuse when a record's file is gone or changed, or a file is out of order
    -lm --check        exit 1 if anything is pending, missing, changed or interrupted (CI gate)
    --baseline NAME    record every migration up to NAME as applied, without running it
    -rm N, --steps N   roll back the last N applied migrations
    -rm --to NAME      roll back every migration applied after NAME
    -y, --yes          roll back or repair without asking (required without a terminal);
                       accepted, and ignored, by every other command; also spelt
                       --batch (yoyo) and --no-input (Django)
    --repair           clear what an interrupted run left (its migration then runs again),
                       and accept changed files as they are now
    -cm NAME [TYPE]    TYPE is a backend name (sqlite, postgres, ...), any case
    --dir PATH         the migrations folder (default ./migrations, CLANDESTINO_MIGRATIONS_DIR)
    --json             one JSON object per event, for CI
    --debug            show the traceback of an error
    -V, --version      print the version

 Fleets (-m, -lm, -rm over many targets: schemas, databases, index prefixes, files):
    --fleet            run on every target of the fleet (CLANDESTINO_TARGETS, ..._QUERY, ..._FROM)
    --targets FILE     the fleet: one target per line, `name [url]`
    --targets-query P  the fleet: the store's targets matching P (LIKE, regex, index pattern, glob)
    --targets-from M:F the fleet: what the Python callable M:F returns
    --concurrency K    targets at once (default 4), and connections per server
    --on-error continue|stop   go on past a failed target (default), or stop the fleet
    --target NAME      one target of the fleet;  --only NAME,...  these targets
    --failed           the targets whose last fleet run failed

 Exit codes: 0 done or nothing to do, 1 a migration failed, 2 bad usage, configuration or
 migration file, 3 database unreachable or lock not obtained in time, 70 an internal
 error (a bug in clandestino), 130 interrupted, 143 terminated.
"""


class CheckFailed(ClandestinoError):
    """-lm --check found migrations that are not all applied as they were."""

    exit_code = 1


class _Formatter(argparse.HelpFormatter):
    # argparse builds a formatter for every add_argument, and one without a width imports
    # shutil to measure the terminal; help is our own text, so any width will do.
    def __init__(self, prog: str, **options: Any) -> None:
        super().__init__(prog, **{**options, "width": 80})


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, "see `cdt -h`")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cdt", add_help=False, allow_abbrev=False, formatter_class=_Formatter)
    command = parser.add_mutually_exclusive_group()
    command.add_argument("-h", "--help", action="store_true")
    command.add_argument("-V", "--version", action="store_true")
    command.add_argument("-m", "--migrate", action="store_true")
    command.add_argument("-lm", "--list", action="store_true")
    command.add_argument("-rm", "--rollback", nargs="?", const=0, type=_positive_int)
    command.add_argument("-cm", "--create", nargs="+")
    command.add_argument("--repair", action="store_true")
    command.add_argument("--baseline", metavar="NAME")
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--to")
    parser.add_argument("--steps", type=_positive_int)
    # yoyo spells it --batch, Django --no-input / --noinput: CI scripts written for those work.
    parser.add_argument("-y", "--yes", "--batch", "--no-input", "--noinput", action="store_true")
    parser.add_argument("--dir")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--debug", action="store_true")
    _add_fleet_arguments(parser)
    return parser


def _add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    # The fleet's own module, imported only for parsing: it loads no driver and does no I/O.
    from clandestino.fleet.options import add_fleet_arguments

    add_fleet_arguments(parser)


def _check_combinations(args: argparse.Namespace) -> None:
    rolling_back = args.rollback is not None
    rules = [
        (args.dry_run and not args.migrate, "--dry-run goes with -m"),
        (args.to is not None and not (args.migrate or rolling_back), "--to goes with -m or -rm"),
        (args.steps is not None and not rolling_back, "--steps goes with -rm"),
        (args.steps is not None and bool(args.rollback), "give the count once: -rm N or --steps N"),
        (
            args.to is not None and rolling_back and bool(args.rollback or args.steps),
            "-rm takes a count or --to, not both",
        ),
        (args.create is not None and len(args.create) > 2, "-cm takes a name and an optional type"),
        (args.strict and not args.migrate, "--strict goes with -m"),
        (args.check and not args.list, "--check goes with -lm"),
    ]
    for broken, message in rules:
        if broken:
            raise UsageError(message, "see `cdt -h`")


def help_text() -> str:
    """The original's help block, naming the repository mode, then the new options."""
    from clandestino.backends import repository_mode
    from clandestino.config import load_settings

    try:
        mode = repository_mode(load_settings())
    except ClandestinoError as exc:
        mode = f"unknown ({exc.one_line()})"
    return _help_block(mode)


def _help_block(mode: str) -> str:
    return (
        " Clandestino is a database migration tool\n"
        f" Migration repository mode is: {mode}\n"
        "  cdt [-h|-m|-lm|-rm|-cm] [params]\n\n"
        f"{_HELP_OPTIONS}\n{_HELP_MORE}"
    )


def version_line() -> str:
    """What `cdt --version` prints: the installed distribution's version, read from its
    metadata (no settings, no backend, no database)."""
    from importlib.metadata import version

    return f"clandestino {version('clandestino')}\n"


def _quick_help() -> str | None:
    """help_text() without reading the settings properly, which imports dataclasses, pathlib and
    the backends: two thirds of the time of `cdt -h`. Only when nothing but the two settings read
    here can change the mode line: no settings file, no other CLANDESTINO_ variable, no local
    repository (else None, and help_text() does it)."""
    import os

    repository, folder = "CLANDESTINO_MIGRATION_REPO", "CLANDESTINO_MIGRATIONS_DIR"
    name = os.environ.get(repository) or ""
    local = os.path.join(
        os.path.expanduser(os.environ.get(folder) or "migrations"), "repository.py"
    )
    others = any(k.startswith("CLANDESTINO_") and k not in (repository, folder) for k in os.environ)
    if others or "://" in name or os.path.exists(local):
        return None
    from clandestino.settings_file import find_settings_file

    if find_settings_file(".") is not None:
        return None
    # "sqlite" is backends.DEFAULT_BACKEND, not imported here for the same reason.
    return _help_block(name.upper() if name else "SQLITE (default)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `cdt` with `argv` (default: sys.argv[1:]) and return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    _ensure_printable(sys.stdout)
    if arguments in (["-V"], ["--version"]):
        sys.stdout.write(version_line())
        return 0
    quick = _quick_help() if arguments in ([], ["-h"], ["--help"]) else None
    if quick is not None:
        sys.stdout.write(quick)
        return 0
    with _results_stream("--json" in arguments) as results, _secrets_hidden(results) as out:
        code = _main(arguments, out)
    if argv is None and not _user_code_loaded():
        _spare_the_exit_collection()
    return code


def _user_code_loaded() -> bool:
    # Migration and repository files are imported under these names (discovery, backends).
    return any(name.startswith("_clandestino_") for name in sys.modules)


def _spare_the_exit_collection() -> None:
    """At exit the interpreter examines every object it holds for cycles; when no user file ran,
    all of them are ours, with nothing to finalize, so they are frozen out of that search (about
    6 ms of the 85 of a no-op run here). Only as the `cdt` command: a caller's process is not
    ours."""
    import gc

    gc.freeze()


@contextmanager
def _results_stream(json_mode: bool) -> Iterator[TextIO]:
    """Where the command's results go: standard output, which with --json holds nothing else.

    With --json, descriptor 1 is pointed at standard error for the run, so that what migrations
    and drivers print (print(), sys.stdout, os.write(1, ...), C code) cannot break the JSON lines;
    the events are written to a copy of the original descriptor."""
    if not json_mode:
        yield sys.stdout
        return
    import os

    saved = sys.stdout
    try:
        sys.stdout.flush()
        stdout_fd, stderr_fd = sys.stdout.fileno(), sys.stderr.fileno()
        kept = os.dup(stdout_fd)
    except (OSError, ValueError):  # io.UnsupportedOperation is both: no descriptor to move
        sys.stdout = sys.stderr
        try:
            yield saved
        finally:
            sys.stdout = saved
        return
    results = open(kept, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
    os.dup2(stderr_fd, stdout_fd)
    sys.stdout = sys.stderr
    try:
        yield results
    finally:
        sys.stdout = saved
        with suppress(OSError):
            results.flush()
        os.dup2(results.fileno(), stdout_fd)
        with suppress(OSError):
            results.close()


@contextmanager
def _secrets_hidden(out: TextIO) -> Iterator[TextIO]:
    """Every byte printed goes through a filter that masks the settings' secrets; yields `out`
    so filtered."""
    from clandestino.config import raw_values
    from clandestino.redact import RedactingStream, secrets_in

    secrets = secrets_in(raw_values())
    if not secrets:
        yield out
        return
    saved = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, RedactingStream(sys.stdout, secrets))
    sys.stderr = cast(TextIO, RedactingStream(sys.stderr, secrets))
    try:
        yield sys.stdout if out is saved[0] else cast(TextIO, RedactingStream(out, secrets))
    finally:
        sys.stdout, sys.stderr = saved


def _main(arguments: list[str], out: TextIO) -> int:
    debug = "--debug" in arguments
    json_mode = "--json" in arguments
    try:
        args = _parser().parse_args(arguments)
        args.arguments = arguments
        _check_combinations(args)
        if args.help or not arguments:
            _print_help(args.json, out)
            return 0
        if args.version:
            _print_version(args.json, out)
            return 0
        return _run(args, out)
    except ClandestinoError as exc:
        _report_error(exc, json_mode, debug, out)
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except _Terminated:
        sys.stderr.write("terminated\n")
        return EXIT_TERMINATED
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {exc} "
            "(a bug in clandestino: run again with --debug and report the traceback)\n"
        )
        return EXIT_INTERNAL_ERROR


def _print_help(json_mode: bool, out: TextIO) -> None:
    if json_mode:
        from clandestino.output import json_line

        print(json_line("help", {"text": help_text()}), file=out)
    else:
        out.write(help_text())


def _print_version(json_mode: bool, out: TextIO) -> None:
    if json_mode:
        from importlib.metadata import version

        from clandestino.output import json_line

        print(json_line("version", {"version": version("clandestino")}), file=out)
    else:
        out.write(version_line())


def _run(args: argparse.Namespace, results: TextIO) -> int:
    commands = (args.migrate, args.list, args.rollback is not None, args.create, args.repair)
    if not (any(commands) or args.baseline):
        raise UsageError("no command given", "use one of -m, -lm, -rm, -cm; see `cdt -h`")
    from clandestino.conflicts import refuse_original_backends

    refuse_original_backends()
    if args.debug:
        _say_where_settings_come_from()
    out = cast(TextIO, _PipeSafe(results))
    from clandestino.fleet.options import fleet_requested

    if not fleet_requested(args) and _answered_without_loop(args, out):
        return 0
    import asyncio

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_until_terminated(_dispatch(args, out)))


def _say_where_settings_come_from() -> None:
    from clandestino.config import load_settings

    settings = load_settings()
    found = settings.settings_file or f"none (no settings.ini or .env from {settings.cwd} upward)"
    sys.stderr.write(f"debug: settings from the environment, then file: {found}\n")


def _loop_factory() -> Callable[[], AbstractEventLoop] | None:
    """uvloop where it is installed (the postgres extra brings it): each statement of a run
    costs about a third less on it, which adds up over a thousand migrations.
    CLANDESTINO_EVENT_LOOP=asyncio keeps the standard loop."""
    from clandestino.config import load_settings

    choice = load_settings().event_loop
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError as exc:
        if choice == "uvloop":
            raise ConfigurationError(
                "CLANDESTINO_EVENT_LOOP=uvloop, but uvloop is not installed",
                "pip install uvloop, or unset CLANDESTINO_EVENT_LOOP",
            ) from exc
        return None
    return cast("Callable[[], AbstractEventLoop]", uvloop.new_event_loop)


def _answered_without_loop(args: argparse.Namespace, out: TextIO) -> bool:
    """-m with nothing to do, and -lm, from one blocking read where the backend offers it."""
    if not (args.migrate and not args.dry_run) and not args.list:
        return False
    from clandestino import fastpath

    sink = _sink(args.json, out)
    if args.migrate:
        report = fastpath.migrate_if_nothing_to_do(
            sink, migrations_dir=args.dir, to=args.to, strict=args.strict
        )
        return report is not None
    states = fastpath.status_from_snapshot(sink, migrations_dir=args.dir)
    if states is None:
        return False
    _show_status(states, args, out)
    return True


class _Terminated(Exception):
    """SIGTERM arrived: the run was cancelled, and cleaned up as for Ctrl-C."""


async def _until_terminated(work: Coroutine[Any, Any, int]) -> int:
    """Run `work`, turning SIGTERM into a cancellation, so that the lock is released and the
    transaction rolled back as on Ctrl-C, before exiting 143."""
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    signalled: list[bool] = []

    def on_terminate() -> None:
        signalled.append(True)
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_terminate)
    try:
        return await work
    except asyncio.CancelledError:
        if signalled:
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _dispatch(args: argparse.Namespace, out: TextIO) -> int:
    from functools import partial

    from clandestino import api
    from clandestino.fleet.cli import run_fleet_command
    from clandestino.fleet.options import fleet_requested

    if fleet_requested(args):
        return await run_fleet_command(args, out)
    sink = _sink(args.json, out)
    if args.migrate:
        await api.migrate(
            migrations_dir=args.dir,
            to=args.to,
            dry_run=args.dry_run,
            strict=args.strict or None,
            on_event=sink,
        )
    elif args.list:
        _show_status(await api.status(migrations_dir=args.dir, on_event=sink), args, out)
    elif args.baseline:
        await api.baseline(args.baseline, migrations_dir=args.dir, on_event=sink)
    elif args.create:
        _print_created(await api.create(*args.create, migrations_dir=args.dir), args.json, out)
    elif args.repair:
        confirm = None if args.yes else _ask_repair
        if not await api.repair(confirm=confirm, migrations_dir=args.dir, on_event=sink):
            _say("Nothing to repair", "nothing_to_repair", args.json, out)
    else:
        report = await api.rollback(
            args.steps or args.rollback or None,
            to=args.to,
            confirm=None if args.yes else partial(_ask, _spelt(args, "-rm", "--rollback")),
            migrations_dir=args.dir,
            on_event=sink,
        )
        if report.cancelled:
            _say("Roll back cancelled: nothing changed", "rollback_cancelled", args.json, out)
    return 0


def _say(text: str, event: str, json_mode: bool, out: TextIO) -> None:
    """A line of the CLI's own that is no engine event: with --json, an event of its own."""
    from clandestino.output import json_line

    print(json_line(event, {"message": text}) if json_mode else text, file=out)


def _sink(json_mode: bool, out: TextIO) -> EventSink:
    import os

    from clandestino.output import JsonRenderer, TextRenderer, wants_colour

    if json_mode:
        return JsonRenderer(out)
    colour = wants_colour(out, os.environ)
    return TextRenderer(out, sys.stderr, colour, wants_colour(sys.stderr, os.environ))


def _spelt(args: argparse.Namespace, short: str, long: str) -> str:
    """The spelling of an option the user gave, for messages that name it."""
    return long if long in args.arguments else short


def _ask(option: str, names: list[str]) -> bool:
    if len(names) == 1:
        question = f"You really want to roll back this migration '{names[0]}'? y/N: "
    else:
        listed = ", ".join(names)
        question = f"You really want to roll back these {len(names)} migrations: {listed}? y/N: "
    return _confirmed(option, question)


def _ask_repair(names: list[str]) -> bool:
    listed = ", ".join(names)
    return _confirmed("--repair", f"Have you checked by hand what {listed} left behind? y/N: ")


def _confirmed(option: str, question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(
            f"{option} asks for confirmation, but there is no terminal to answer it",
            "pass --yes (-y) to go ahead without asking",
        )
    import signal

    # asyncio.run turns the first Ctrl-C into a task cancellation, which a blocking input()
    # would not notice; the default handler interrupts the prompt at once.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        answer = input(question)
    except EOFError:
        answer = ""
    finally:
        signal.signal(signal.SIGINT, previous)
    return answer.strip() in {"Y", "y", "yes", "Yes"}


def _show_status(states: list[Any], args: argparse.Namespace, out: TextIO) -> None:
    _print_status(states, args.json, out)
    if args.check:
        _check(states)


def _check(states: list[Any]) -> None:
    """-lm --check: the CI gate. Anything but 'all applied, as they were' fails it."""
    counts = {
        "pending": sum(not s.applied and not s.interrupted for s in states),
        "missing": sum(s.file_missing for s in states),
        "changed": sum(s.changed for s in states),
        "interrupted": sum(bool(s.interrupted) for s in states),
    }
    found = [what for what, n in counts.items() if n]
    if found:
        listed = ", ".join(f"{counts[what]} {what}" for what in found)
        hint = "; ".join(_CHECK_HINTS[what] for what in found)
        raise CheckFailed(f"check failed: {listed} (listed above)", hint)


# What fixes each finding of -lm --check; only `cdt -m` fixes a pending one.
_CHECK_HINTS = {
    "pending": "run `cdt -m` to apply what is pending",
    "missing": "restore the missing files (or delete their records by hand)",
    "changed": "restore the changed files, or accept them as they are now with `cdt --repair`",
    "interrupted": "check what the interrupted steps left, then run `cdt --repair`",
}


def _print_status(states: list[Any], json_mode: bool, out: TextIO) -> None:
    from dataclasses import asdict

    from clandestino.output import json_line, status_lines

    if json_mode:
        for state in states:
            print(json_line("migration_state", asdict(state)), file=out)
    else:
        print("\n".join(status_lines(states)), file=out)


def _print_created(created: Any, json_mode: bool, out: TextIO) -> None:
    from clandestino.output import OK, json_line

    if json_mode:
        fields = {"path": str(created.path), "template": created.template}
        print(json_line("migration_created", fields), file=out)
        return
    if created.created_folder:
        print(f"Path not exists: {created.path.parent}, creating!", file=out)
    print(f"Creating {created.template} migration: {created.path.name} {OK}", file=out)


def _report_error(exc: ClandestinoError, json_mode: bool, debug: bool, out: TextIO) -> None:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    if json_mode:
        from clandestino.output import json_line

        fields = {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
        print(json_line("error", fields), file=out)
    else:
        import os

        from clandestino.output import paint, wants_colour

        line = paint(f"error: {exc.one_line()}", "31", wants_colour(sys.stderr, os.environ))
        sys.stderr.write(line + "\n")


def _ensure_printable(stream: TextIO) -> None:
    # The status symbols are not in every terminal's encoding; never die printing them.
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None and (stream.encoding or "").lower().replace("-", "") != "utf8":
        reconfigure(errors="replace")


class _PipeSafe:
    """stdout that a closed pipe (`cdt -lm | head -1`) cannot break: once the reader is gone,
    output is dropped and the run goes on, so a migration is never cut short by its log."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            self._drop()
        return len(text)

    def isatty(self) -> bool:
        return self._stream.isatty()

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def _drop(self) -> None:
        # Point the descriptor at /dev/null so the interpreter's own final flush is quiet too.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
