"""Intraday bars: fetched into a store of their own per timeframe, validated against the
session's minutes and the daily bar (`fetch`, `store`, `validate`)."""

from aurora.intraday.fetch import IntradayReport, fetch_intraday
from aurora.intraday.store import (
    TIMEFRAMES,
    check_intraday_timeframe,
    intraday_store,
    read_intraday,
)
from aurora.intraday.validate import IntradayValidation, validate_intraday

__all__ = ["TIMEFRAMES", "IntradayReport", "IntradayValidation", "check_intraday_timeframe",
           "fetch_intraday", "intraday_store", "read_intraday", "validate_intraday"]
