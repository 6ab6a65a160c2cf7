"""Query-parameter parsing and validation for the emulated market-data routes.

Every parser takes the raw query string value (or None when the parameter is absent; an
empty value counts as absent) and either returns a typed value or raises `ParamError`,
which the server turns into HTTP 400 `{"message": <text>}`.

Time values are handled as integer nanoseconds since the Unix epoch (UTC) so that RFC-3339
inputs with nanosecond fractions compare exactly against bar timestamps.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
MAX_BARS_LIMIT = 10_000
DEFAULT_BARS_LIMIT = 1_000
MAX_ACTIONS_LIMIT = 1_000
DEFAULT_ACTIONS_LIMIT = 100

FEEDS = ("sip", "iex", "otc", "delayed_sip", "boats", "overnight")
ADJUSTMENT_TOKENS = ("raw", "split", "dividend", "spin-off", "all")
CURRENCIES = (
    "USD", "GBP", "CHF", "EUR", "CAD", "JPY", "TRY", "AUD", "CZK", "SEK", "DKK", "SGD", "HKD",
    "HUF", "NZD", "NOK", "PLN",
)

_TIMEFRAME = re.compile(r"^([1-9][0-9]*)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNIT = {"Min": "Min", "T": "Min", "Hour": "Hour", "H": "Hour", "Day": "Day", "D": "Day",
         "Week": "Week", "W": "Week", "Month": "Month", "M": "Month"}
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-/]{0,20}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class ParamError(ValueError):
    """An invalid query parameter; the message is the 400 response's `message`."""


@dataclass(frozen=True)
class Timeframe:
    """A parsed bar timeframe: `amount` units of `unit` (Min, Hour, Day, Week, Month)."""

    amount: int
    unit: str

    @property
    def label(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def intraday(self) -> bool:
        return self.unit in ("Min", "Hour")

    @property
    def minutes(self) -> int:
        """The length of an intraday bar in minutes (0 for Day, Week and Month)."""
        return {"Min": self.amount, "Hour": 60 * self.amount}.get(self.unit, 0)


def present(value: str | None) -> str | None:
    """None for an absent or empty parameter, else the value unchanged."""
    return None if value is None or value == "" else value


def parse_timeframe(value: str | None) -> Timeframe:
    """Both spellings within Alpaca's documented ranges.

    Anything outside the documented grammar (Min 1-59, Hour 1-23, Day, Week, Month 1, 2,
    3, 4, 6, 12) raises "invalid timeframe".
    """
    value = present(value)
    if value is None:
        raise ParamError("missing timeframe")
    match = _TIMEFRAME.match(value)
    if not match:
        raise ParamError("invalid timeframe")
    amount, unit = int(match.group(1)), _UNIT[match.group(2)]
    valid = {
        "Min": 1 <= amount <= 59,
        "Hour": 1 <= amount <= 23,
        "Day": amount == 1,
        "Week": amount == 1,
        "Month": amount in (1, 2, 3, 4, 6, 12),
    }[unit]
    if not valid:
        raise ParamError("invalid timeframe")
    return Timeframe(amount, unit)


def ny_midnight_ns(day: dt.date) -> int:
    """Nanoseconds since the epoch of midnight America/New_York on `day` (a daily bar's t)."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=NEW_YORK)
    return datetime_to_ns(local)


def datetime_to_ns(value: dt.datetime) -> int:
    """An aware datetime as integer nanoseconds since the epoch (exact to the microsecond)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def parse_time(name: str, value: str) -> int:
    """RFC-3339 (Z or numeric offset, fraction up to ns) or YYYY-MM-DD -> epoch nanoseconds.

    A bare date means midnight America/New_York on that date (the emulator's decision for
    the open question of §9.1), so `start=D&end=D` selects day D's daily bar.
    """
    match = _RFC3339.match(value)
    if match:
        year, month, day, hour, minute, second, frac, zone = match.groups()
        try:
            if zone in ("Z", "z"):
                tz = dt.UTC
            else:
                sign = 1 if zone[0] == "+" else -1
                hours, minutes = int(zone[1:3]), int(zone[4:6])
                if hours > 23 or minutes > 59:
                    raise ValueError(zone)
                tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
            stamp = dt.datetime(int(year), int(month), int(day), int(hour), int(minute),
                                int(second), tzinfo=tz)
        except ValueError:
            raise ParamError(f"invalid {name}: {value!r}") from None
        nanos = int((frac or "").ljust(9, "0"))
        return datetime_to_ns(stamp) + nanos
    match = _DATE.match(value)
    if match:
        try:
            day_ = dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            raise ParamError(f"invalid {name}: {value!r}") from None
        return ny_midnight_ns(day_)
    raise ParamError(f"invalid {name}: {value!r} (use RFC-3339 or YYYY-MM-DD)")


def parse_date(name: str, value: str | None, default: dt.date) -> dt.date:
    """A strict YYYY-MM-DD date (corporate-actions start/end); absent -> `default`."""
    value = present(value)
    if value is None:
        return default
    match = _DATE.match(value)
    if not match:
        raise ParamError(f"invalid {name}: {value!r} (use YYYY-MM-DD)")
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise ParamError(f"invalid {name}: {value!r}") from None


def parse_limit(value: str | None, *, default: int, maximum: int) -> int:
    """An integer 1..maximum; absent -> default."""
    value = present(value)
    if value is None:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise ParamError(f"invalid limit: {value!r}") from None
    if not 1 <= limit <= maximum:
        raise ParamError(f"invalid limit: must be between 1 and {maximum}")
    return limit


def parse_symbols(value: str | None, *, required: bool = True) -> tuple[str, ...]:
    """A comma list of tickers -> unique upper-case symbols in lexical order."""
    value = present(value)
    if value is None:
        if required:
            raise ParamError("missing symbols")
        return ()
    out: set[str] = set()
    for raw in value.split(","):
        symbol = raw.strip().upper()
        if not _SYMBOL.match(symbol):
            raise ParamError(f"invalid symbol: {raw!r}")
        out.add(symbol)
    return tuple(sorted(out))


def parse_single_symbol(value: str) -> str:
    """The {symbol} path segment; a comma list is rejected as Alpaca does."""
    symbol = value.strip().upper()
    if "," in symbol or not _SYMBOL.match(symbol):
        raise ParamError("invalid symbol")
    return symbol


def parse_adjustment(value: str | None) -> str:
    """raw | split | dividend | spin-off | all, or a comma combination -> adjust_bars mode.

    The emulator has no spin-offs, so `spin-off` adds nothing; `raw` must stand alone.
    """
    value = present(value)
    if value is None:
        return "raw"
    tokens = {t.strip() for t in value.split(",")}
    if not tokens or not tokens <= set(ADJUSTMENT_TOKENS):
        raise ParamError(f"invalid adjustment: {value!r}")
    if "raw" in tokens:
        if len(tokens) > 1:
            raise ParamError(f"invalid adjustment: {value!r} (raw cannot be combined)")
        return "raw"
    if "all" in tokens or {"split", "dividend"} <= tokens:
        return "all"
    if "split" in tokens:
        return "split"
    if "dividend" in tokens:
        return "dividend"
    return "raw"


def parse_choice(name: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    """One of `choices` (exact, lower-case as Alpaca documents them); absent -> default."""
    value = present(value)
    if value is None:
        return default
    if value not in choices:
        raise ParamError(f"invalid {name}: {value!r}")
    return value


def parse_currency(value: str | None) -> str:
    """ISO-4217 codes of alpaca-py's enum; only USD is served (no FX conversion)."""
    value = present(value)
    if value is None:
        return "USD"
    code = value.upper()
    if code not in CURRENCIES:
        raise ParamError(f"invalid currency: {value!r}")
    if code != "USD":
        raise ParamError(f"currency {code} not supported by this emulator (USD only)")
    return code


def parse_asof(value: str | None, today: dt.date) -> dt.date | None:
    """The `asof` date for rename mapping: absent -> today; `-` -> None (mapping off)."""
    value = present(value)
    if value is None:
        return today
    if value == "-":
        return None
    return parse_date("asof", value, today)


def ny_date(now: dt.datetime) -> dt.date:
    """The New York calendar date of an aware instant."""
    return now.astimezone(NEW_YORK).date()
