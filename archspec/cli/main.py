"""``archspec`` entry point: argument parsing, error reporting and exit codes.

Each subcommand is a module in :mod:`archspec.cli.commands` with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``, found at start-up; their
top-level imports are light, so ``archspec check`` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from types import ModuleType
from typing import NoReturn

from archspec.cli import commands
from archspec.io import OutputError
from archspec.resources import ResourceError
from archspec.runtime import RuntimeInputError
from archspec.spec.diagnostics import SpecError

ORDER = (
    "check", "compile", "codegen", "export", "run", "bench", "import", "diff", "schema", "doc",
    "graph",
)  # fmt: skip


class UsageError(Exception):
    """Bad command-line usage: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _command_modules() -> dict[str, ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")]
    names.sort(
        key=lambda n: (ORDER.index(n.rstrip("_")) if n.rstrip("_") in ORDER else len(ORDER), n)
    )
    return {n: importlib.import_module(f"{commands.__name__}.{n}") for n in names}


def build_parser() -> argparse.ArgumentParser:
    from archspec import __version__

    parser = _Parser(
        prog="archspec", description="Compile and verify neural-network architecture specs."
    )
    parser.add_argument("--version", action="version", version=f"archspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in _command_modules().items():
        # A module for a command that is a Python keyword ends in _ (import_.py).
        p = sub.add_parser(name.rstrip("_"), help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args._run(args)
        return code
    except UsageError as exc:
        print(f"{exc}; see 'archspec --help'", file=sys.stderr)
        return 2
    except SpecError as exc:
        for d in exc.diagnostics:
            print(d.render(), file=sys.stderr)
        return 2
    except (OutputError, ResourceError, RuntimeInputError) as exc:
        print(f"archspec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archspec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug, not bad input: one line unless asked for the traceback
        if os.environ.get("ARCHSPEC_DEBUG"):
            raise
        print(
            f"archspec: internal error: {type(exc).__name__}: {exc} (set ARCHSPEC_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
