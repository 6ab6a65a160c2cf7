"""User features: the expressions a feature file adds to the 45 built-in ones.

`load_user_features(path)` reads

- a TOML file: a `[features]` table of `f_name = "expression"` strings, each parsed by
  `aurora.features.grammar` (never evaluated), an error naming the file, line and column;
- a Python file: run as a module (it is the user's own code, run deliberately), defining
  `FEATURES: dict[str, Expr]` built from the fields and operators of `aurora.features`,
  `custom(fn, *inputs, lookback=n)` included.

Names match `f_[a-z0-9_]+` and are not built-in names. Every error is one line:
`<file>[:<line>[:<column>]]: feature <name>: <problem>` (docs/user-features.md).
`feature_set_hash` identifies a set of features for features.meta.json.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import importlib.util
import re
import sys
import tomllib
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from aurora.features.catalog import CATALOG, INTRADAY
from aurora.features.expr import Expr
from aurora.features.grammar import FeatureDefinitionError, Locate, _parse_located
from aurora.features.operators import Custom

USER_MODULES = "aurora_user_features"  # a Python feature file runs as USER_MODULES.<stem>

NAME_PATTERN = re.compile(r"f_[a-z0-9_]+")
CONSTANT = "a constant is the same for every symbol and date: a feature reads a field"
BUILTIN_NAMES = frozenset(f.name for f in (*CATALOG, *INTRADAY))


def load_user_features(path: Path) -> dict[str, Expr]:
    """The features defined in `path` (`.toml` or `.py`), in the file's order; a one-line
    FeatureDefinitionError naming the file (and line, and feature) when one is malformed."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".py"):
        raise FeatureDefinitionError("a feature file is a .toml or a .py file",
                                     source=str(path))
    text = _read(path)
    return _load_toml(path, text) if suffix == ".toml" else _load_python(path, text)


def feature_set_hash(features: Mapping[str, Expr]) -> str:
    """16 hex digits of the sha256 of the lines `name=repr(expr)\\n`, sorted by name."""
    text = "".join(f"{name}={features[name]!r}\n" for name in sorted(features))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read(path: Path) -> str:
    source = str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FeatureDefinitionError("feature file not found", source=source) from None
    except IsADirectoryError:
        raise FeatureDefinitionError("is a directory, not a feature file",
                                     source=source) from None
    except UnicodeDecodeError as exc:
        raise FeatureDefinitionError(f"not a UTF-8 text file ({exc.reason} at byte "
                                     f"{exc.start})", source=source) from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise FeatureDefinitionError(f"cannot be read ({reason})", source=source) from None


def _check_name(name: object, source: str, line: int | None = None,
                column: int | None = None) -> str:
    if not isinstance(name, str):
        raise FeatureDefinitionError(f"a feature name must be a string, got {name!r}",
                                     source=source, line=line)
    shown = name if NAME_PATTERN.fullmatch(name) else repr(name)
    if shown != name:
        raise FeatureDefinitionError("a feature name must match f_[a-z0-9_]+ (lower case, "
                                     "starting with f_)", source=source, line=line,
                                     column=column, feature=shown)
    if name in BUILTIN_NAMES:
        raise FeatureDefinitionError("the name of a built-in feature: choose another name",
                                     source=source, line=line, column=column, feature=name)
    return name


# -- TOML -----------------------------------------------------------------------------------
_TOML_ERROR_AT = re.compile(r"^(.*) \(at line (\d+), column (\d+)\)$")
_TOML_TYPES = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
               list: "an array", dict: "a table"}


def _load_toml(path: Path, text: str) -> dict[str, Expr]:
    source = str(path)
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_ERROR_AT.match(str(exc))
        if m is None:
            raise FeatureDefinitionError(f"not valid TOML ({exc})", source=source) from None
        raise FeatureDefinitionError(f"not valid TOML ({m.group(1)})", source=source,
                                     line=int(m.group(2)), column=int(m.group(3))) from None
    places = _TomlPlaces.of(text)

    def fail(problem: str, keys: tuple[str, ...], feature: str | None = None) -> NoReturn:
        line, column = places.where(keys)
        raise FeatureDefinitionError(problem, source=source, line=line, column=column,
                                     feature=feature)

    for key, value in tree.items():
        if key != "features":
            what = "table" if isinstance(value, dict) else "key"
            fail(f"unexpected {what} {key!r}: a feature file holds only a [features] table",
                 (key,))
    if "features" not in tree:
        raise FeatureDefinitionError('no [features] table (write [features], then lines '
                                     'f_name = "expression")', source=source)
    table = tree["features"]
    if not isinstance(table, dict):
        fail(f"features must be a table ([features], then lines f_name = \"expression\"), "
             f"not {_toml_type(table)}", ("features",))
    out: dict[str, Expr] = {}
    for name, value in table.items():
        keys = ("features", name)
        line, column = places.where(keys)
        _check_name(name, source, line, column)
        if not isinstance(value, str):
            fail(f"features.{name} must be a string holding an expression, not "
                 f"{_toml_type(value)}", keys, name)
        try:
            out[name] = _parse_located(value, source, places.string_locator(keys, value))
        except FeatureDefinitionError as exc:
            raise exc.for_feature(name) from None
        if out[name].kind == "const":
            fail(CONSTANT, keys, name)
    return out


def _toml_type(value: Any) -> str:
    return next((shown for t, shown in _TOML_TYPES.items() if isinstance(value, t)),
                "a date or time")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


@dataclass
class _TomlPlaces:
    """Where the keys and strings of a TOML text are (tomllib gives no positions): the
    offset of each key path's first mention (a header or a key, dotted keys and inline
    tables included), and each string value's text with the offset of each of its
    characters (escapes and line-ending backslashes included) and of its closing quote."""

    text: str
    first: dict[tuple[str, ...], int] = field(default_factory=dict)
    strings: dict[tuple[str, ...], tuple[str, list[int]]] = field(default_factory=dict)
    i: int = 0
    starts: list[int] = field(default_factory=list)  # the offset of each line

    @classmethod
    def of(cls, text: str) -> _TomlPlaces:
        places = cls(text.replace("\r\n", "\n"))  # as tomllib reads it: columns unchanged
        with contextlib.suppress(IndexError, KeyError, ValueError):  # positions are a
            places.scan()  # courtesy (tomllib read the values): keep those found
        places.starts = [0] + [k + 1 for k, c in enumerate(places.text) if c == "\n"]
        return places

    def position(self, offset: int) -> tuple[int, int]:
        row = bisect.bisect_right(self.starts, offset) - 1
        return row + 1, offset - self.starts[row] + 1

    def where(self, keys: tuple[str, ...]) -> tuple[int | None, int | None]:
        for k in range(len(keys), 0, -1):
            if keys[:k] in self.first:
                return self.position(self.first[keys[:k]])
        return None, None

    def string_locator(self, keys: tuple[str, ...], value: str) -> Locate:
        found = self.strings.get(keys)
        if found is not None and found[0] == value:
            offsets = found[1]
            return lambda k: self.position(offsets[k])
        line, column = self.where(keys)  # not found as read: the key's position for all
        return lambda k: (line or 1, column or 1)

    # scanner (the text is valid TOML: tomllib read it first)
    def scan(self) -> None:
        table: tuple[str, ...] = ()
        while True:
            self.skip(newlines=True)
            if self.i >= len(self.text):
                return
            start = self.i
            if self.text.startswith("[[", self.i) or self.text[self.i] == "[":
                double = self.text.startswith("[[", self.i)
                self.i += 2 if double else 1
                table = self.key()
                self.skip()
                self.i += 2 if double else 1
                self.mark(table, start)
            else:
                keys = table + self.key()
                self.skip()
                self.i += 1  # =
                self.skip()
                self.mark(keys, start)
                self.value(keys)

    def skip(self, newlines: bool = False) -> None:
        text = self.text
        while self.i < len(text):
            c = text[self.i]
            if c in " \t" or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
            else:
                return

    def mark(self, keys: tuple[str, ...] | None, offset: int) -> None:
        for k in range(1, len(keys or ()) + 1):
            self.first.setdefault(keys[:k], offset)  # type: ignore[index]

    def key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self.skip()
            c = self.text[self.i]
            if c == '"':
                parts.append(self.basic(multi=False)[0])
            elif c == "'":
                parts.append(self.literal(multi=False)[0])
            else:
                m = _BARE_KEY.match(self.text, self.i)
                assert m is not None
                parts.append(m.group())
                self.i = m.end()
            self.skip()
            if self.text[self.i] != ".":
                return tuple(parts)
            self.i += 1

    def value(self, keys: tuple[str, ...] | None) -> None:
        text, i = self.text, self.i
        if text.startswith('"', i) or text.startswith("'", i):
            multi = text.startswith('"""', i) or text.startswith("'''", i)
            found = self.basic(multi) if text[i] == '"' else self.literal(multi)
            if keys is not None:
                self.strings[keys] = found
        elif text[i] == "[":
            self.i += 1
            while True:
                self.skip(newlines=True)
                if self.text[self.i] == "]":
                    self.i += 1
                    return
                self.value(None)
                self.skip(newlines=True)
                if self.text[self.i] == ",":
                    self.i += 1
        elif text[i] == "{":
            self.i += 1
            while True:
                self.skip()
                if self.text[self.i] == "}":
                    self.i += 1
                    return
                start = self.i
                inner = self.key()
                sub = keys + inner if keys is not None else None
                self.skip()
                self.i += 1  # =
                self.skip()
                self.mark(sub, start)
                self.value(sub)
                self.skip()
                if self.text[self.i] == ",":
                    self.i += 1
        else:  # number, boolean, date or time
            while self.i < len(text) and text[self.i] not in ",]}\n#":
                self.i += 1

    def _closing(self, quote: str) -> int:
        """At a triple quote: how many of the quotes here are text (0 to 2)."""
        run = 0
        while self.text.startswith(quote, self.i + run) and run < 5:
            run += 1
        return run - 3

    def basic(self, multi: bool) -> tuple[str, list[int]]:
        text = self.text
        self.i += 3 if multi else 1
        if multi and text.startswith("\n", self.i):
            self.i += 1
        out: list[str] = []
        offsets: list[int] = []
        while True:
            c = text[self.i]
            if c == '"' and (not multi or text.startswith('"""', self.i)):
                extra = self._closing('"') if multi else 0
                out += '"' * extra
                offsets += range(self.i, self.i + extra)
                offsets.append(self.i + extra)
                self.i += extra + (3 if multi else 1)
                return "".join(out), offsets
            if c != "\\":
                out.append(c)
                offsets.append(self.i)
                self.i += 1
                continue
            escape = text[self.i + 1]
            if multi and escape in " \t\n":  # line-ending backslash: trims to the next text
                self.i += 1
                while text[self.i] in " \t\n":
                    self.i += 1
                continue
            if escape in "uU":
                size = 4 if escape == "u" else 8
                out.append(chr(int(text[self.i + 2:self.i + 2 + size], 16)))
                length = 2 + size
            else:
                out.append(_ESCAPES[escape])
                length = 2
            offsets.append(self.i)
            self.i += length

    def literal(self, multi: bool) -> tuple[str, list[int]]:
        text = self.text
        self.i += 3 if multi else 1
        if multi and text.startswith("\n", self.i):
            self.i += 1
        start = self.i
        if multi:
            self.i = text.index("'''", start)
            end = self.i + self._closing("'")
            self.i = end + 3
        else:
            end = text.index("'", start)
            self.i = end + 1
        return text[start:end], [*range(start, end), end]


# -- Python ---------------------------------------------------------------------------------
def _load_python(path: Path, text: str) -> dict[str, Expr]:
    source = str(path)
    module = _run_module(path)
    if not hasattr(module, "FEATURES"):
        raise FeatureDefinitionError("defines no FEATURES (a dict of feature name -> "
                                     "expression)", source=source)
    features = module.FEATURES
    if not isinstance(features, Mapping):
        raise FeatureDefinitionError("FEATURES must be a dict of feature name -> expression,"
                                     f" not {type(features).__name__}",
                                     source=source, line=_line_of(text, "FEATURES"))
    out: dict[str, Expr] = {}
    for name, value in features.items():
        line = _line_of(text, name) if isinstance(name, str) else None
        _check_name(name, source, line)
        if not isinstance(value, Expr):
            raise FeatureDefinitionError(
                f"FEATURES[{name!r}] is {type(value).__name__} {_short(value)}, not an "
                "expression (build one from the fields and operators, e.g. Mean(close, 20))",
                source=source, line=line, feature=name)
        if value.kind == "const":
            raise FeatureDefinitionError(CONSTANT, source=source, line=line, feature=name)
        out[name] = value
    _check_customs(out, source, text)
    return out


def _module_name(path: Path) -> str:
    return f"{USER_MODULES}." + (re.sub(r"\W", "_", path.stem) or "features")


def _run_module(path: Path) -> Any:
    """Run the file as the module `aurora_user_features.<stem>` (registered in sys.modules,
    so its functions can be found by name); a one-line error on any failure."""
    source, name = str(path), _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FeatureDefinitionError("cannot be loaded as a Python module", source=source)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        if previous is not None:
            sys.modules[name] = previous
        else:
            del sys.modules[name]
        line, column = _error_place(exc, path)
        message = str(exc) if not isinstance(exc, SyntaxError) else exc.msg
        shown = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        raise FeatureDefinitionError(f"error while running the file: {shown}",
                                     source=source, line=line, column=column) from None
    return module


def _error_place(exc: BaseException, path: Path) -> tuple[int | None, int | None]:
    """The line (and column, for a syntax error) in the user's file where `exc` arose: the
    innermost frame of the traceback in that file."""
    target = path.resolve()

    def same(filename: str | None) -> bool:
        try:
            return filename is not None and Path(filename).resolve() == target
        except (OSError, ValueError):
            return False

    if isinstance(exc, SyntaxError) and same(exc.filename):
        return exc.lineno, exc.offset
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if same(frame.filename):
            line = frame.lineno
    return line, None


def _line_of(text: str, name: str) -> int | None:
    """The first line of the Python source quoting `name` ("f_x" or 'f_x', or the name
    FEATURES), for a message; None when absent."""
    pattern = re.compile(r"\bFEATURES\b" if name == "FEATURES"
                         else r"""(["'])""" + re.escape(name) + r"\1")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.search(line):
            return number
    return None


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _check_customs(features: Mapping[str, Expr], source: str, text: str) -> None:
    """Two different functions under one name (two lambdas, say) would make two custom nodes
    equal, so computed once; a name with a memory address (a partial, a callable object)
    changes every run, so the feature set's hash would too. Both are errors."""
    seen: dict[tuple[Any, ...], Any] = {}
    for name, expr in features.items():
        stack, visited = [expr], set()
        while stack:
            node = stack.pop()
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.extend(node.inputs)
            if not isinstance(node, Custom):
                continue
            fn_name = node.params[0]
            if re.search(r"0x[0-9a-fA-F]{4,}", fn_name):
                raise FeatureDefinitionError(
                    f"custom function {fn_name} has no stable name: define it with def",
                    source=source, line=_line_of(text, name), feature=name)
            other = seen.setdefault(node.key, node.fn)
            if other is not node.fn:
                raise FeatureDefinitionError(
                    f"two different custom functions are named {fn_name} (with the same inputs"
                    " and look-back they would be computed as one): give each its own def"
                    " name", source=source, line=_line_of(text, name), feature=name)
