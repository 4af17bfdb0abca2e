"""``archspec`` entry point: argument parsing, error reporting and exit codes.

Each subcommand is a module in :mod:`archspec.cli.commands` with ``HELP``,
``EXIT_1`` (what exit status 1 means for it, or None), ``NEEDS`` (the install
extra it needs, or None), ``add_arguments(parser)`` and ``run(args) -> int``.
Their top-level imports are light, so ``archspec check`` never loads torch.

Every error is one line: ``FILE:LINE:COL: error: ...`` where there is a
place, ``archspec: error: ...`` otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from archspec.cli import commands
from archspec.cli.options import FAILURE_2
from archspec.cli.plugins import skip_plugin_discovery
from archspec.errors import (
    MissingExtraError,
    OutputError,
    ResourceError,
    RuntimeInputError,
    UsageError,
)

skip_plugin_discovery()  # before anything imports pydantic

ORDER = (
    "check", "fit", "compile", "codegen", "export", "run", "bench", "import", "diff", "schema",
    "doc", "graph",
)  # fmt: skip
EXIT_STATUS = (
    "exit status: 0 all good; 1 a published figure failed (or, with --strict, a warning), "
    f"or a --verify found a mismatch; 2 {FAILURE_2}. "
    "'archspec COMMAND --help' says what each command does and which statuses it uses."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _command_names() -> list[str]:
    """The modules of :mod:`archspec.cli.commands`, in the order ``--help`` lists them."""
    folder = Path(commands.__file__).parent
    names = [p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")]
    names.sort(
        key=lambda n: (ORDER.index(n.rstrip("_")) if n.rstrip("_") in ORDER else len(ORDER), n)
    )
    return names


def _command_modules(only: str | None = None) -> dict[str, ModuleType]:
    names = [n for n in _command_names() if only is None or n.rstrip("_") == only]
    return {n: importlib.import_module(f"{commands.__name__}.{n}") for n in names}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or, given the command being run, only that command's part.

    Every command module is imported to build the whole parser; ``archspec
    check`` needs only its own (start-up). Top-level help and an unknown
    command get the whole parser, so they list every command.
    """
    from archspec.cli.options import exit_status
    from archspec.version import __version__

    parser = _Parser(
        prog="archspec",
        description="Compile and verify neural-network architecture specs.",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("--version", action="version", version=f"archspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in _command_modules(command).items():
        # A module for a command that is a Python keyword ends in _ (import_.py).
        p = sub.add_parser(
            name.rstrip("_"),
            help=module.HELP,
            description=module.HELP,
            epilog=exit_status(module.EXIT_1),
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _needs=module.NEEDS)
    return parser


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    try:  # a reader that closed the pipe (| head -1) is not a failure: flush now, quietly
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()  # the verdict stands: a closed pipe is not a failure
    return code


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser(_command_in(argv)).parse_args(argv)
        if args._needs:
            from archspec.extras import require

            require(args._needs, f"archspec {args.command}")
        code: int = args._run(args)
        return code
    except (UsageError, MissingExtraError, OutputError, ResourceError, RuntimeInputError) as exc:
        print(f"archspec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:
        # A SpecError can only come from archspec.spec, which is loaded by then (start-up stays light).
        diagnostics = sys.modules.get("archspec.spec.diagnostics")
        if diagnostics is not None and isinstance(exc, diagnostics.SpecError):
            for d in exc.diagnostics:
                print(d.render(), file=sys.stderr)
            return 2
        if os.environ.get("ARCHSPEC_DEBUG"):  # a bug, not bad input: one line unless asked
            raise
        print(
            f"archspec: internal error: {type(exc).__name__}: {exc} (set ARCHSPEC_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 70


def _command_in(argv: list[str] | None) -> str | None:
    """The command ``argv`` runs, when its first word names one; else None."""
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] in {n.rstrip("_") for n in _command_names()}:
        return words[0]
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
