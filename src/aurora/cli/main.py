"""Entry point of the `aurora` console command.

Each stage's commands live in their own module with a `register(app)` function; this module
assembles them, adds the commands of installed plugins (entry point group
`aurora.commands`: the test bed adds `aurora emulator` and `aurora demo`), and turns
`AuroraError` into a one-line message and an exit code. Every command records itself
through `aurora.cli.common.command_run`.

Start-up time: `aurora --help` and light commands must not pay for the heavy stage
libraries, so the command functions import these inside their bodies, each marked
"deferred: start-up time": `aurora.fetch` (fetch), `aurora.features` (build),
`aurora.predict` (predict, evaluate), `aurora.ops.pipeline` (run),
`aurora.ops.recovery` (drill), `aurora.importbars` (import bars) and `aurora.vendorfiles`
(validate --against); and `aurora.calendar` loads exchange-calendars on first use.
Everything else is imported at module top.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from aurora.cli import build_cmd, fetch_cmd, ops_cmd, predict_cmd, quarantine_cmd, validate_cmd
from aurora.errors import AuroraError, NotInstalled, StoreError
from aurora.oserrors import describe_os_error
from aurora.redaction import redact, secret_values

PLUGIN_GROUP = "aurora.commands"
TESTBED_COMMANDS = {
    "demo": "Run the whole pipeline offline against the Alpaca emulator (test bed).",
    "emulator": "Serve an Alpaca-compatible market-data API on 127.0.0.1 (test bed).",
}

app = typer.Typer(
    name="aurora",
    help="Aurora: Alpaca daily bars -> validated store -> 45 features -> ranked predictions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (fetch_cmd, validate_cmd, build_cmd, predict_cmd, ops_cmd, quarantine_cmd):
    module.register(app)


def _register_plugins(app: typer.Typer) -> None:
    """Commands of installed plugins; a one-line hint for test-bed commands when absent."""
    for entry in entry_points(group=PLUGIN_GROUP):
        entry.load()(app)
    present = {command.name for command in app.registered_commands}
    for name, text in TESTBED_COMMANDS.items():
        if name not in present:
            _missing(app, name, text)


def _missing(app: typer.Typer, name: str, text: str) -> None:
    @app.command(name, help=f"{text} Needs the aurora-testbed package.",
                 context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def missing() -> None:
        raise NotInstalled(f"`aurora {name}` needs Aurora's test bed, which is not installed "
                           "here: run `python3 scripts/dev.py demo` from a clone, or "
                           "`pip install -e testbed` in it")


_register_plugins(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; AuroraError becomes `error: <message>` on stderr and its exit code.

    Any other OSError (a file system failure no library call turned into an AuroraError)
    becomes `error: <file>: <reason>` with StoreError's exit code 7; secret values are
    masked. Other exceptions are programming errors and keep their traceback. Click's
    standalone mode reports usage errors itself (usage line, message, exit 2) and ends
    with SystemExit.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, standalone_mode=True, obj=args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except AuroraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {redact(describe_os_error(exc), secret_values())}", file=sys.stderr)
        return StoreError.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
