"""The expression grammar of user features: text -> `Expr`, without `eval`.

The grammar is the Python of `aurora.features` restricted to one expression: the same names
(`open` is the field Python spells `open_`), the same operators with Python's precedence,
and the same result, since every node is built by the very Python operation the text
spells (`2 < close` is `close > 2`, as in Python; `1 / 4` is the number 0.25)::

    expression := sum [ ("<" | "<=" | ">" | ">=") sum ]      (comparisons do not chain)
    sum        := term { ("+" | "-") term }
    term       := unary { ("*" | "/") unary }
    unary      := "-" unary | power
    power      := primary [ "**" unary ]                     (right-associative)
    primary    := number | field | call | "(" expression ")"
    call       := operator "(" argument { "," argument } [ "," ] ")"
    argument   := expression | "sector"

`sector` is only the group argument of `Rank`, `ZScore`, `Demean` and `Winsorize`; a window
is an integer literal; `custom` exists in Python feature files only. Every error is a
one-line `FeatureDefinitionError` reading `<source>:<line>:<column>: <problem>` at the
offending token (docs/user-features.md).
"""

from __future__ import annotations

import bisect
import difflib
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from aurora.errors import ConfigError
from aurora.features.expr import Binary, Const, Expr, Group, sector
from aurora.features.vocabulary import (
    EXPRESSION,
    FIELD_NAMES,
    GROUP,
    GROUPED,
    NAMES,
    NUMBER,
    SIGNATURES,
    WINDOW,
    Signature,
)

MAX_NESTING = 64  # parentheses, calls and unary minus inside each other (the parser recurses)
MAX_DEPTH = 200  # depth of the expression tree (repr and equality recurse)
MAX_WINDOW = 100_000  # sessions (about 400 years): a larger window is a typo

Locate = Callable[[int], tuple[int, int]]


class FeatureDefinitionError(ConfigError):
    """A user feature is malformed; one line: `<source>[:<line>[:<column>]]: <problem>`,
    with `feature <name>: ` before the problem when the feature is known."""

    def __init__(self, problem: str, *, source: str, line: int | None = None,
                 column: int | None = None, feature: str | None = None) -> None:
        problem = " ".join(problem.splitlines()) or "invalid feature"
        where = source
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        what = f"feature {feature}: {problem}" if feature is not None else problem
        super().__init__(f"{where}: {what}")
        self.problem, self.source, self.feature = problem, source, feature
        self.line, self.column = line, column

    def for_feature(self, feature: str) -> FeatureDefinitionError:
        """The same error, naming `feature`."""
        return FeatureDefinitionError(self.problem, source=self.source, line=self.line,
                                      column=self.column, feature=feature)




# -- tokens ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    kind: str  # "number" | "name" | "op" | "end"
    text: str
    offset: int

    def shown(self) -> str:
        if self.kind == "end":
            return "the end of the expression"
        return f"{self.kind} {self.text!r}" if self.kind != "op" else repr(self.text)


_DIGITS = frozenset("0123456789")
_NUMBER_RE = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_RE = re.compile(r"[A-Za-z0-9_.]*")
_OPS = ("**", "<=", ">=", "<", ">", "+", "-", "*", "/", "(", ")", ",")
_UNSUPPORTED = {
    "==": "'==' is not an operator of the grammar (comparisons: < <= > >=)",
    "!=": "'!=' is not an operator of the grammar (comparisons: < <= > >=)",
    "//": "'//' is not an operator of the grammar (division is /)",
    "=": "'=' is not part of the grammar (arguments are positional, comparisons are"
         " < <= > >=)",
    "%": "'%' is not an operator of the grammar",
    "^": "'^' is not an operator of the grammar (a power is **)",
    "&": "'&' is not an operator of the grammar (multiply comparisons: (a > 0) * (b > 0))",
    "|": "'|' is not an operator of the grammar",
    "~": "'~' is not an operator of the grammar",
    "!": "'!' is not an operator of the grammar",
}


class _Parser:
    def __init__(self, text: str, source: str, locate: Locate) -> None:
        self.text, self.source, self.locate = text, source, locate
        self.tokens = self._tokenize()
        self.i = 0
        self.nesting = 0

    # errors
    def fail(self, offset: int, problem: str) -> NoReturn:
        line, column = self.locate(offset)
        raise FeatureDefinitionError(problem, source=self.source, line=line, column=column)

    # tokenizer
    def _tokenize(self) -> list[_Token]:
        text, i, out = self.text, 0, []
        while i < len(text):
            c = text[i]
            if c in " \t\r\n\f\v":
                i += 1
                continue
            if c in _DIGITS or (c == "." and text[i + 1:i + 2] in _DIGITS):
                m = _NUMBER_RE.match(text, i)
                assert m is not None
                end = m.end()
                word = m.group() + _WORD_RE.match(text, end).group()  # type: ignore[union-attr]
                if end < len(text) and (text[end].isalnum() or text[end] in "_."):
                    self.fail(i, f"invalid number {word!r}")
                if re.fullmatch(r"0\d+", m.group()):
                    self.fail(i, f"invalid number {word!r}: an integer has no leading zeros")
                out.append(_Token("number", m.group(), i))
                i = end
                continue
            m = _NAME_RE.match(text, i)
            if m is not None:
                out.append(_Token("name", m.group(), i))
                i = m.end()
                continue
            for bad, problem in _UNSUPPORTED.items():  # none is the start of an operator
                if text.startswith(bad, i):
                    self.fail(i, problem)
            op = next((op for op in _OPS if text.startswith(op, i)), None)
            if op is None:
                self.fail(i, f"unexpected character {c!r}")
            out.append(_Token("op", op, i))
            i += len(op)
        out.append(_Token("end", "", len(text)))
        return out

    # token stream
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at(self, text: str) -> bool:
        token = self.tokens[self.i]
        return token.kind == "op" and token.text == text

    # grammar
    def parse(self) -> Expr:
        if self.peek().kind == "end":
            self.fail(0, "empty expression")
        item = self.expression()
        token = self.peek()
        if token.kind != "end":
            if token.text == ")":
                self.fail(token.offset, "unmatched ')'")
            self.fail(token.offset, f"unexpected {token.shown()} after a complete expression"
                                    " (a missing operator or comma?)")
        return self.as_expr(item, None)

    def expression(self) -> _Item:
        left = self.sum()
        token = self.peek()
        if token.kind == "op" and token.text in _COMPARISONS:
            self.advance()
            right = self.sum()
            again = self.peek()
            if again.kind == "op" and again.text in _COMPARISONS:
                self.fail(again.offset, "comparisons do not chain: a < b < c is not an"
                                        " expression; write (a < b) * (b < c)")
            left = self.binary(token, left, right)
        return left

    def sum(self) -> _Item:
        left = self.term()
        while self.at("+") or self.at("-"):
            token = self.advance()
            left = self.binary(token, left, self.term())
        return left

    def term(self) -> _Item:
        left = self.unary()
        while self.at("*") or self.at("/"):
            token = self.advance()
            left = self.binary(token, left, self.unary())
        return left

    def unary(self) -> _Item:
        token = self.peek()
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            self.fail(token.offset, f"expression nested more than {MAX_NESTING} levels deep")
        try:
            if self.at("-"):
                self.advance()
                return self.negate(token, self.unary())
            if self.at("+"):
                self.fail(token.offset, "unary '+' is not part of the grammar")
            return self.power()
        finally:
            self.nesting -= 1

    def power(self) -> _Item:
        base = self.primary()
        if self.at("**"):
            token = self.advance()
            return self.binary(token, base, self.unary())
        return base

    def primary(self) -> _Item:
        token = self.advance()
        if token.kind == "number":
            return self.number(token)
        if token.kind == "name":
            if self.at("("):
                return self.call(token)
            return self.name(token)
        if token.text == "(":
            if self.at(")"):
                self.fail(self.peek().offset, "empty parentheses: expected an expression")
            inner = self.expression()
            closing = self.peek()
            if closing.kind == "end":
                self.fail(token.offset, "'(' is never closed")
            if not self.at(")"):
                self.fail(closing.offset, f"expected ')' to close the '(' at "
                          f"{self._where(token.offset)}, got {closing.shown()}")
            self.advance()
            return _Item(inner.value, token.offset, self.tokens[self.i - 1].offset + 1,
                         inner.depth, inner.integer)
        if token.kind == "end":
            previous = self.tokens[self.i - 2] if self.i >= 2 else None
            after = f" after {previous.shown()}" if previous is not None else ""
            self.fail(token.offset, f"unexpected end of the expression{after}")
        if token.text == ")":
            self.fail(token.offset, "expected an expression, got ')'")
        self.fail(token.offset, f"expected an expression, got {token.shown()}")

    def _where(self, offset: int) -> str:
        line, column = self.locate(offset)
        return f"{line}:{column}"

    # leaves
    def number(self, token: _Token) -> _Item:
        value = float(token.text)
        if not math.isfinite(value):
            self.fail(token.offset, f"number {token.text} is too large")
        integer = int(token.text) if token.text.isdigit() else None
        return _Item(value, token.offset, token.offset + len(token.text), 0, integer)

    def name(self, token: _Token) -> _Item:
        end = token.offset + len(token.text)
        if token.text in FIELD_NAMES:
            return _Item(FIELD_NAMES[token.text], token.offset, end, 0)
        if token.text == "sector":
            return _Item(sector, token.offset, end, 0)
        if token.text in SIGNATURES:
            self.fail(token.offset, f"{token.text} is an operator: call it as "
                                    f"{SIGNATURES[token.text].text(token.text)}")
        self.unknown(token)

    def unknown(self, token: _Token) -> NoReturn:
        name = token.text
        if name == "custom":
            self.fail(token.offset, "custom(fn, *inputs, lookback=n) exists in Python feature"
                                    " files only (.py), not in expressions")
        if name.lower() in ("nan", "inf"):
            self.fail(token.offset, f"{name!r} is not a value of the grammar (Where(cond, a)"
                                    " is missing where cond is 0)")
        self.fail(token.offset, f"unknown name {name!r}{_suggestion(name)}")

    # nodes
    def call(self, token: _Token) -> _Item:
        name = token.text
        signature = SIGNATURES.get(name)
        if signature is None:
            if name in FIELD_NAMES or name == "sector":
                self.fail(token.offset, f"{name} is a {'field' if name != 'sector' else 'group'}"
                                        ", not an operator: it takes no arguments")
            self.unknown(token)
        opening = self.advance()
        args: list[_Item] = []
        while not self.at(")"):
            if self.peek().kind == "end":
                self.fail(opening.offset, f"the '(' of {name}( is never closed")
            args.append(self.expression())
            if self.at(","):
                self.advance()
                continue
            following = self.peek()
            if following.kind == "end":
                self.fail(opening.offset, f"the '(' of {name}( is never closed")
            if not self.at(")"):
                self.fail(following.offset, f"expected ',' or ')' after argument {len(args)} "
                          f"of {name}, got {following.shown()}")
        closing = self.advance()
        return self.apply(token, signature, args, closing)

    def apply(self, token: _Token, signature: Signature, args: list[_Item],
              closing: _Token) -> _Item:
        name, n = token.text, len(args)
        if not signature.required <= n <= len(signature.params):
            offset = closing.offset if n < signature.required else \
                args[len(signature.params)].start
            self.fail(offset, f"{name} takes {signature.count()}, {signature.text(name)}: "
                              f"got {n}")
        values = [self.argument(name, label, kind, item)
                  for (label, kind), item in zip(signature.params, args, strict=False)]
        try:
            node = signature.cls(*values)
        except (ValueError, TypeError) as exc:
            numbers = [item.start for (_, kind), item in zip(signature.params, args,
                                                                strict=False) if kind == NUMBER]
            self.fail(numbers[0] if numbers else token.offset, str(exc))
        return self.item(node, token.offset, closing.offset + 1, args, token.offset)

    def argument(self, name: str, label: str, kind: str, item: _Item) -> Any:
        value, shown = item.value, self.text[item.start:item.end]
        if kind == EXPRESSION:
            return self.as_expr(item, name)
        if kind == GROUP:
            if value is not sector:
                self.fail(item.start, f"the group of {name} must be sector, got {shown!r}")
            return value
        what = f"the window n of {name}" if kind == WINDOW else f"{label} of {name}"
        if isinstance(value, Group):
            self.fail(item.start, f"{what} must be a number, got sector")
        if isinstance(value, Expr):
            self.fail(item.start, f"{what} must be a number, not the expression {shown!r}")
        if kind == NUMBER:
            return value
        if item.integer is None:
            literal = _NUMBER_RE.fullmatch(shown.strip("()- \t\r\n")) is not None
            self.fail(item.start, f"{what} must be an integer literal, got {shown!r}"
                      + ("" if literal else " (no arithmetic in a window)"))
        least = getattr(SIGNATURES[name].cls, "least", 1)
        if item.integer < least:
            self.fail(item.start, f"{what} must be an integer >= {least}, got {item.integer}")
        if item.integer > MAX_WINDOW:
            self.fail(item.start, f"{what} is too large: {item.integer} sessions (at most "
                                  f"{MAX_WINDOW})")
        return item.integer

    def as_expr(self, item: _Item, name: str | None) -> Any:
        if isinstance(item.value, Group):
            self.fail(item.start, f"sector can only be the group argument of {GROUPED},"
                                  " as in Rank(x, sector)")
        if name is None and not isinstance(item.value, Expr):
            return Const(item.value)
        return item.value  # a number becomes a Const in the operator, as in Python

    def negate(self, token: _Token, operand: _Item) -> _Item:
        value = self.as_expr(operand, "-")
        if isinstance(value, Expr):
            return self.item(-value, token.offset, operand.end, [operand], token.offset)
        integer = -operand.integer if operand.integer is not None else None
        return _Item(-value, token.offset, operand.end, operand.depth, integer)

    def binary(self, token: _Token, left: _Item, right: _Item) -> _Item:
        a, b = self.as_expr(left, token.text), self.as_expr(right, token.text)
        op = token.text
        if isinstance(a, Expr) or isinstance(b, Expr):
            try:
                node = _PYTHON[op](a, b)
            except TypeError:  # `number ** expression`: Expr has no __rpow__ (yet)
                node = Binary(op, a, b)
            return self.item(node, left.start, right.end, [left, right], token.offset)
        if op in _COMPARISONS:
            self.fail(token.offset, f"comparing two numbers ({self.text[left.start:right.end]})"
                                    " gives no expression")
        try:
            value = _PYTHON[op](a, b)
        except ZeroDivisionError:
            self.fail(token.offset, f"division by zero in {self.text[left.start:right.end]}")
        except OverflowError:
            value = math.inf
        if isinstance(value, complex):
            self.fail(token.offset, f"{self.text[left.start:right.end]} is not a real number")
        if not math.isfinite(value):
            self.fail(token.offset, f"number {self.text[left.start:right.end]} is too large")
        return _Item(float(value), left.start, right.end, 0)

    def item(self, node: Expr, start: int, end: int, parts: list[_Item], at: int) -> _Item:
        """`node` spelled by text[start:end] (made by the token at `at`), bounded in depth."""
        depth = 1 + max((p.depth for p in parts), default=0)
        if depth > MAX_DEPTH:
            self.fail(at, f"expression nested more than {MAX_DEPTH} levels deep")
        return _Item(node, start, end, depth)


@dataclass(frozen=True)
class _Item:
    """A parsed part: an `Expr`, a number (float) or the group `sector`, with the offsets of
    its text, the depth of its tree and, for an integer literal, its value."""

    value: Any
    start: int
    end: int
    depth: int
    integer: int | None = None


_COMPARISONS = ("<", "<=", ">", ">=")
_PYTHON: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge,
}


def _suggestion(name: str) -> str:
    names = list(NAMES)
    by_lower = {n.lower(): n for n in names}
    match = by_lower.get(name.lower()) or by_lower.get(name.lower().rstrip("_"))
    if match is None:
        close_ = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
        match = by_lower[close_[0]] if close_ else None
    return f" (did you mean {match!r}?)" if match is not None else ""


def _locator(text: str, line: int, column: int) -> Locate:
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def locate(offset: int) -> tuple[int, int]:
        row = bisect.bisect_right(starts, offset) - 1
        return line + row, (column if row == 0 else 1) + offset - starts[row]

    return locate


def _parse_located(text: str, source: str, locate: Locate) -> Expr:
    """`parse_expression` with each offset of `text` placed by `locate` (a TOML string
    whose escapes make its text differ from the file's)."""
    try:
        return _Parser(text, source, locate).parse()
    except RecursionError:
        line, column = locate(0)
        raise FeatureDefinitionError("expression nested too deeply", source=source,
                                     line=line, column=column) from None


def parse_expression(text: str, *, source: str = "<expression>", line: int = 1,
                     column: int = 1) -> Expr:
    """The `Expr` that `text` spells (module docstring); `line` and `column` are where `text`
    starts in `source`. Raises a one-line FeatureDefinitionError at the offending token."""
    return _parse_located(text, source, _locator(text, line, column))
