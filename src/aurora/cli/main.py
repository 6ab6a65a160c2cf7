"""Entry point of the `aurora` console command.

Each stage's commands live in their own module with a `register(app)` function; this module
assembles them, adds the commands of installed plugins (entry point group
`aurora.commands`: the test bed adds `aurora emulator` and `aurora demo`), and turns
`AuroraError` into a one-line message and an exit code. Every command records itself
through `aurora.cli.common.command_run`.

Start-up time: a command pays only for its own module. `aurora COMMAND ...` imports and
registers the one module that owns COMMAND (`COMMAND_MODULES`); no command, `--help` or an
unknown name registers them all, and the plugins' (whose entry points are read only then).
Within a module, the heavy stage libraries are imported inside the command bodies, each
marked "deferred: start-up time": `aurora.fetch` (fetch), `aurora.features` (build),
`aurora.predict` (predict, evaluate), `aurora.ops.pipeline` (run),
`aurora.ops.recovery` (drill), `aurora.importbars` (import bars) and `aurora.vendorfiles`
(validate --against).
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import Any

import typer

from aurora.errors import AuroraError, NotInstalled, StoreError
from aurora.oserrors import describe_os_error
from aurora.redaction import redact, secret_values

PLUGIN_GROUP = "aurora.commands"
TESTBED_COMMANDS = {
    "demo": "Run the whole pipeline offline against the Alpaca emulator (test bed).",
    "emulator": "Serve an Alpaca-compatible market-data API on 127.0.0.1 (test bed).",
}

# command name -> the module under aurora.cli that registers it (in `aurora --help` order)
COMMAND_MODULES = {
    "fetch": "fetch_cmd", "import": "fetch_cmd", "validate": "validate_cmd",
    "build": "build_cmd", "predict": "predict_cmd", "evaluate": "predict_cmd",
    "backtest": "backtest_cmd", "track": "backtest_cmd",
    **dict.fromkeys(["run", "status", "backup", "restore", "rollback", "drill", "prune"],
                    "ops_cmd"),
    "quarantine": "quarantine_cmd", "stream": "stream_cmd",
}


def build_app(command: str | None = None) -> typer.Typer:
    """The Typer application: only `command`'s module when it is a built-in command, else
    every module's commands and the plugins'."""
    app = typer.Typer(
        name="aurora",
        help="Aurora: Alpaca daily bars -> validated store -> 45 features -> ranked "
        "predictions.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    # a group even when one command is registered: `aurora build` stays `aurora build`
    app.callback()(lambda: None)
    owner = COMMAND_MODULES.get(command or "")
    for name in dict.fromkeys(COMMAND_MODULES.values()):
        if owner is None or name == owner:
            importlib.import_module(f"aurora.cli.{name}").register(app)
    if owner is None:
        _register_plugins(app)
    return app


def __getattr__(name: str) -> Any:
    """`aurora.cli.main.app`: the whole application (for click's test runner)."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def _register_plugins(app: typer.Typer) -> None:
    """Commands of installed plugins; a one-line hint for test-bed commands when absent."""
    from importlib.metadata import entry_points  # deferred: start-up time

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; AuroraError becomes `error: <message>` on stderr and its exit code.

    Any other OSError (a file system failure no library call turned into an AuroraError)
    becomes `error: <file>: <reason>` with StoreError's exit code 7; secret values are
    masked. Other exceptions are programming errors and keep their traceback. Click's
    standalone mode reports usage errors itself (usage line, message, exit 2) and ends
    with SystemExit.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    app = build_app(next((a for a in args if not a.startswith("-")), None))
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


def run() -> None:
    """The `aurora` console script: `main()`, then exit with its code.

    Before exiting, every object is moved out of the garbage collector's reach
    (`gc.freeze`): the process ends at once, and the collections the interpreter runs while
    it tears its modules down (about 0.3 s after a build here) would free nothing that the
    exit does not. `main()` itself leaves the collector alone, for callers that go on."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
