import datetime as dt

import pytest
from ops_helpers import prices_frame, publish, set_created_at

from aurora.config import AuroraConfig, load_config
from aurora.errors import ConfigError
from aurora.ops.freshness import check_freshness, deadline_for, latest_stored_session

UTC = dt.UTC
CFG = AuroraConfig()


def test_deadline_is_chicago_wall_clock():
    # 16:00 CDT (UTC-5) in March after DST, 16:00 CST (UTC-6) in January.
    assert deadline_for(dt.date(2024, 3, 15), CFG).astimezone(UTC) == dt.datetime(
        2024, 3, 15, 21, 0, tzinfo=UTC)
    assert deadline_for(dt.date(2024, 1, 5), CFG).astimezone(UTC) == dt.datetime(
        2024, 1, 5, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize("field,value", [("deadline", "25:00"), ("deadline", "4pm"),
                                         ("deadline_timezone", "Mars/Olympus")])
def test_bad_deadline_settings(field, value):
    with pytest.raises(ConfigError, match=f"ops.{field}"):
        load_config(env={f"AURORA_OPS__{field.upper()}": value})


def test_a_store_that_never_held_prices_is_not_stale(store):
    fresh = check_freshness(store, CFG, dt.datetime(2024, 3, 15, 22, 0, tzinfo=UTC))
    assert fresh.latest_session is None and not fresh.stale and fresh.in_by_deadline is None
    assert fresh.summary().startswith("no price data stored yet")


def test_before_and_after_deadline(store):
    publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 14))})
    assert latest_stored_session(store) == dt.date(2024, 3, 14)
    # Friday 15:30 Chicago: the close has passed (expected = Friday) but not the deadline.
    before = check_freshness(store, CFG, dt.datetime(2024, 3, 15, 20, 30, tzinfo=UTC))
    assert before.expected_session == dt.date(2024, 3, 15)
    assert before.due_session == dt.date(2024, 3, 14)
    assert (before.sessions_behind, before.stale) == (1, False)
    # Friday 16:30 Chicago: Friday was due and is missing.
    after = check_freshness(store, CFG, dt.datetime(2024, 3, 15, 21, 30, tzinfo=UTC))
    assert after.due_session == dt.date(2024, 3, 15)
    assert after.stale and after.in_by_deadline is False and after.sessions_behind == 1
    assert "STALE" in after.summary()
    # Over the weekend, Friday stays the due session.
    sunday = check_freshness(store, CFG, dt.datetime(2024, 3, 17, 12, 0, tzinfo=UTC))
    assert sunday.due_session == dt.date(2024, 3, 15) and sunday.stale


def test_in_by_deadline_uses_first_version_holding_the_session(store):
    early = publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 3, 15))})
    set_created_at(store, early, dt.datetime(2024, 3, 15, 20, 45, tzinfo=UTC))
    publish(store, "build", **{"features.parquet": prices_frame(dt.date(2024, 3, 15))})
    now = dt.datetime(2024, 3, 18, 12, 0, tzinfo=UTC)  # Monday morning
    fresh = check_freshness(store, CFG, now)
    assert not fresh.stale and fresh.in_by_deadline is True and fresh.sessions_behind == 0
    set_created_at(store, early, dt.datetime(2024, 3, 15, 21, 15, tzinfo=UTC))
    assert check_freshness(store, CFG, now).in_by_deadline is False


def test_date_max_falls_back_to_the_file(store):
    from aurora.atomic import atomic_write_parquet

    with store.transaction("fetch", base=store.current_version()) as txn:
        atomic_write_parquet(txn.path("prices.parquet"), prices_frame(dt.date(2024, 3, 13)))
    assert latest_stored_session(store) == dt.date(2024, 3, 13)


def test_half_day_and_holiday(store):
    # 2024-11-28 is Thanksgiving (closed), 2024-11-29 a half day (13:00 New York close).
    publish(store, "fetch", **{"prices.parquet": prices_frame(dt.date(2024, 11, 27))})
    fresh = check_freshness(store, CFG, dt.datetime(2024, 11, 29, 19, 0, tzinfo=UTC))
    assert fresh.expected_session == dt.date(2024, 11, 29)
    assert fresh.due_session == dt.date(2024, 11, 27) and not fresh.stale
