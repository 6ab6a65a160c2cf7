"""Feature expressions: a small typed algebra over (symbols x sessions) panels.

An `Expr` is an immutable node: a field (`close`, ...), a constant, an element-wise
operation, a per-symbol time-series operator (`Mean(x, 20)`), a per-date cross-sectional
one (`Rank(x)`, `ZScore(x, sector)`), the market series `Market(x)` or a `custom` numpy
function. Arithmetic (`+ - * / **`, unary `-`) and comparisons (`< <= > >=`: 1.0 or 0.0)
build new nodes, so `Log(volume + 1)` is an expression.

Contract (every operator):
- **Look-back** (`Expr.lookback`): the sessions before t that the value at t reads, derived
  from the inputs, never typed: `Ref(x, n)` adds n, a window of n sessions n - 1, so
  `Ref(Mean(x, 5), 3)` needs 7, `custom` its `lookback`; other nodes add nothing. The
  engine masks every node where its look-back is not full, outside its symbol's span and
  where not finite.
- **Missing data**: NaN is missing. A window statistic uses the bars present when they are at
  least 80% of its window (`ops.min_obs`); `Ref` and element-wise operations propagate a
  missing input; cross-sectional operators use the symbols present on the date.
- **Causality**: a time-series operator at t reads only sessions <= t of its own symbol; a
  cross-sectional or market one only date t. `custom` functions are proven causal by the
  build's perturbation test, not trusted.
- **Identity**: expressions built alike are equal and hash alike (`Expr.key`), so the
  planner computes a shared subexpression once. `repr` is the grammar form.

The engine calls `compute(args, ctx)` with the inputs' arrays, in topological order, under
`np.errstate(all="ignore")` (a quotient by zero is expected; it masks what is not finite).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from aurora.schemas import INTRADAY_FIELDS

Kind = str  # "field" | "const" | "elementwise" | "series" | "cross" | "market" | "custom"
FIELDS = ("open", "high", "low", "close", "volume", "vwap", "dollar_volume",
          "shares_outstanding", *INTRADAY_FIELDS)


@dataclass(frozen=True)
class Context:
    """What a node's computation may read besides its inputs: the sector code of each row
    (cross-sectional `by` sector) and the rows that are members on each date (market)."""

    sector_codes: np.ndarray
    member: np.ndarray | None = None  # bool, like the arrays (None: every row a member)


class Expr:
    """A node of a feature expression (module docstring)."""

    kind: ClassVar[Kind] = "elementwise"
    window: int = 0  # sessions this node itself adds to its inputs' look-back
    # missing wherever an input is, and finite when they are: such a node needs no mask of
    # its own once its inputs are masked (the engine skips that pass)
    keeps_mask: bool = False

    def __init__(self, *inputs: Expr, params: tuple[Any, ...] = ()) -> None:
        self.inputs: tuple[Expr, ...] = tuple(_expr(x) for x in inputs)
        self.params = params
        self.key: tuple[Any, ...] = (type(self).__name__, params, *(i.key for i in self.inputs))
        self.lookback: int = self.window + max((i.lookback for i in self.inputs), default=0)

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        raise NotImplementedError

    def walk(self) -> list[Expr]:
        """This node and every node below it, each once, inputs before their readers."""
        seen: dict[tuple[Any, ...], Expr] = {}

        def visit(node: Expr) -> None:
            if node.key not in seen:
                for i in node.inputs:
                    visit(i)
                seen[node.key] = node

        visit(self)
        return list(seen.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        shown = [repr(i) for i in self.inputs] + [_param(p) for p in self.params]
        return f"{type(self).__name__}({', '.join(shown)})"

    # arithmetic and comparisons build nodes
    def __add__(self, o: Any) -> Expr: return Binary("+", self, o)
    def __radd__(self, o: Any) -> Expr: return Binary("+", o, self)
    def __sub__(self, o: Any) -> Expr: return Binary("-", self, o)
    def __rsub__(self, o: Any) -> Expr: return Binary("-", o, self)
    def __mul__(self, o: Any) -> Expr: return Binary("*", self, o)
    def __rmul__(self, o: Any) -> Expr: return Binary("*", o, self)
    def __truediv__(self, o: Any) -> Expr: return Binary("/", self, o)
    def __rtruediv__(self, o: Any) -> Expr: return Binary("/", o, self)
    def __pow__(self, o: Any) -> Expr: return Binary("**", self, o)
    def __rpow__(self, o: Any) -> Expr: return Binary("**", o, self)
    def __neg__(self) -> Expr: return Binary("-", Const(0.0), self)
    def __lt__(self, o: Any) -> Expr: return Binary("<", self, o)
    def __le__(self, o: Any) -> Expr: return Binary("<=", self, o)
    def __gt__(self, o: Any) -> Expr: return Binary(">", self, o)
    def __ge__(self, o: Any) -> Expr: return Binary(">=", self, o)


def _number(v: float) -> str:
    """The shortest text that reads back as exactly `v` (`2`, `0.5`, `2.772588722239781`)."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


def _param(p: Any) -> str:
    return repr(p) if isinstance(p, str) else _number(p) if isinstance(p, float) else str(p)


def _expr(x: Any) -> Expr:
    if isinstance(x, Expr):
        return x
    if isinstance(x, int | float) and not isinstance(x, bool):
        return Const(float(x))
    raise TypeError(f"{x!r} is not an expression or a number")


# -- leaves ---------------------------------------------------------------------------------
class Field(Expr):
    """An input array: `open high low close vwap` (adjusted as of each date), `volume` (same
    basis), `dollar_volume` (USD traded), `shares_outstanding` (known at t, volume basis),
    and each day's intraday summaries `intraday_*` (`aurora.intraday.daily`: log returns
    and shares within the day, present only in a build with intraday features)."""

    kind = "field"

    def __init__(self, name: str) -> None:
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r} (fields: {', '.join(FIELDS)})")
        super().__init__(params=(name,))
        self.name = name

    def __repr__(self) -> str:
        return self.name


class Const(Expr):
    kind = "const"

    def __init__(self, value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"constant {value!r} is not a finite number")
        super().__init__(params=(float(value),))
        self.value = float(value)

    def __repr__(self) -> str:
        return _number(self.value)

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        return np.float64(self.value)  # type: ignore[return-value]


class Group:
    """A grouping of the rows for cross-sectional operators: only `sector` exists."""

    def __repr__(self) -> str:
        return "sector"


sector = Group()
open_, high, low, close = Field("open"), Field("high"), Field("low"), Field("close")
volume, vwap, dollar_volume = Field("volume"), Field("vwap"), Field("dollar_volume")
shares_outstanding = Field("shares_outstanding")
intraday_rv_5min, intraday_ret_first_30min, intraday_ret_last_30min = (
    Field(n) for n in INTRADAY_FIELDS[:3])
intraday_close_vwap_gap, intraday_volume_share_last_30min = (
    Field(n) for n in INTRADAY_FIELDS[3:])


# -- element-wise ---------------------------------------------------------------------------
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power,
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}


class Binary(Expr):
    """`a op b`; a comparison is 1.0 or 0.0, missing when either side is missing."""

    def __init__(self, op: str, a: Any, b: Any) -> None:
        super().__init__(a, b, params=(op,))
        self.op = op
        # a quotient or a power of finite values may be infinite; a sum in practice is not
        self.keeps_mask = op not in ("/", "**")

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        a, b = args
        out = _BINARY[self.op](a, b)
        if self.op in ("<", "<=", ">", ">="):
            return np.where(np.isnan(a) | np.isnan(b), np.nan, out.astype(np.float64))
        return out

    def __repr__(self) -> str:
        a, b = self.inputs
        if self.op == "-" and isinstance(a, Const) and a.value == 0.0:
            return f"-{_wrap(b)}"
        left = f"({a!r})" if self.op == "**" and repr(a).startswith("-") else _wrap(a)
        return f"{left} {self.op} {_wrap(b)}"


def _wrap(x: Expr) -> str:
    return f"({x!r})" if isinstance(x, Binary) else repr(x)


class _Ufunc(Expr):
    """`fn(*inputs)`, cell by cell."""

    kernel: ClassVar[Callable[..., np.ndarray]]

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        return type(self).kernel(*args)


class _Unary(_Ufunc):
    def __init__(self, x: Any) -> None:
        super().__init__(x)


class _Pairwise(_Ufunc):
    def __init__(self, a: Any, b: Any) -> None:
        super().__init__(a, b)


class Abs(_Unary):
    kernel = staticmethod(np.abs)
    keeps_mask = True


class Sign(_Unary):
    kernel = staticmethod(np.sign)
    keeps_mask = True


class Log(_Unary):
    """Natural log; missing for a non-positive input."""

    kernel = staticmethod(lambda x: np.log(np.where(x > 0, x, np.nan)))


class Sqrt(_Unary):
    """Square root; missing for a negative input."""

    kernel = staticmethod(lambda x: np.sqrt(np.where(x >= 0, x, np.nan)))
    keeps_mask = True


class Present(_Unary):
    """1.0 where x is present, 0.0 where it is missing (never missing itself)."""

    kernel = staticmethod(lambda x: (~np.isnan(x)).astype(np.float64))


class Coalesce(_Pairwise):
    """a where it is present, else b."""

    kernel = staticmethod(lambda a, b: np.where(np.isnan(a), b, a))


class Less(_Pairwise):
    """The smaller of two expressions at each cell (Qlib's `Less`; missing if either is)."""

    kernel = staticmethod(np.minimum)
    keeps_mask = True


class Greater(_Pairwise):
    """The larger of two expressions at each cell (Qlib's `Greater`)."""

    kernel = staticmethod(np.maximum)
    keeps_mask = True


class Power(Expr):
    def __init__(self, x: Any, p: float) -> None:
        super().__init__(x, params=(float(p),))

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        return np.power(args[0], self.params[0])


class Where(Expr):
    """`a` where `cond` is non-zero, else `b` (missing when omitted); missing where `cond`
    is missing."""

    def __init__(self, cond: Any, a: Any, b: Any = math.nan) -> None:
        super().__init__(cond, a, *(() if isinstance(b, float) and math.isnan(b) else (b,)))

    def compute(self, args: Sequence[np.ndarray], ctx: Context) -> np.ndarray:
        cond, a, b = (*args, np.nan) if len(args) == 2 else args
        return np.where(np.isnan(cond), np.nan, np.where(cond != 0, a, b))
