"""The ``labctl`` command line. Subcommands import their machinery lazily so
``labctl --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that define ``register(subparsers)``: each adds its subcommand's parser and
# sets ``func`` (a callable taking the parsed args, returning an exit code).
SUBCOMMANDS = (
    "labctl.cli.gui",
    "labctl.cli.sim",
    "labctl.cli.analyze",
    "labctl.cli.demo",
    "labctl.cli.run",
    "labctl.cli.series",
    "labctl.cli.station",
)


def build_parser() -> argparse.ArgumentParser:
    from labctl import __version__

    parser = argparse.ArgumentParser(
        prog="labctl",
        description="Instrument control, simulation and live analysis for a THz spectroscopy lab.",
    )
    parser.add_argument("--version", action="version", version=f"labctl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # a half-installed extra must not break the rest
            if exc.name != module:
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from labctl.errors import (
        InstrumentError,
        LabctlError,
        StationError,
        brief,
        describe_os_error,
    )

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import logging

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except StationError as exc:  # bad input (station file, arguments): exit 2, like argparse
        print(f"labctl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except LabctlError as exc:
        text = f"labctl {args.command}: error: {exc}"
        # an instrument's fault chain is cut to ~200 characters (-v: whole); a message about
        # a file (path, line, key, hint) is written for the operator and printed whole
        short = isinstance(exc, InstrumentError) and not args.verbose
        print(brief(text) if short else brief(text, 10_000), file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, read-only directory, a vanished mount: say which
        if args.verbose:
            raise
        print(brief(f"labctl {args.command}: error: {describe_os_error(exc)}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"labctl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen failure: say what, keep the trace on -v
        if args.verbose:
            raise
        print(
            brief(f"labctl {args.command}: unexpected {type(exc).__name__}: {exc}", 170)
            + " (run with -v for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
