"""Entry point of the `aurora` console command.

Each stage's commands live in their own module with a `register(app)` function; this module
only assembles them and turns `AuroraError` into a one-line message and an exit code.
"""

from __future__ import annotations

import sys

import typer

from aurora.cli import build_cmd, emulator_cmd, fetch_cmd, ops_cmd, predict_cmd, validate_cmd
from aurora.errors import AuroraError
from aurora.ops.audit import audit_cli

app = typer.Typer(
    name="aurora",
    help="Aurora: Alpaca daily bars -> validated store -> 45 features -> ranked predictions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (fetch_cmd, validate_cmd, build_cmd, predict_cmd, ops_cmd, emulator_cmd):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; AuroraError becomes `error: <message>` on stderr and its exit code.

    Every command is recorded in the audit log of its data directory (`aurora.ops.audit`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    return audit_cli(args, lambda: _dispatch(args))


def _dispatch(argv: list[str]) -> tuple[int, str | None]:
    """Run the command; (exit code, one-line error or None).

    Click's standalone mode reports usage errors itself (usage line, message, exit 2) and
    ends with SystemExit; an AuroraError raised by a command propagates to here.
    """
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code, None if code == 0 else "usage error or aborted"
    except AuroraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code, str(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130, "interrupted"
    return 0, None


if __name__ == "__main__":
    sys.exit(main())
