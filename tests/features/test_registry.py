from pathlib import Path

import pytest

from aurora.features import docs
from aurora.features.registry import (
    EXPECTED_COUNTS,
    FEATURE_NAMES,
    MAX_LOOKBACK,
    REGISTRY,
    family_counts,
)

SEED_NAMES = ["f_ret_1d", "f_vol_5d", "f_volume_surprise", "f_amihud_illiquidity",
              "f_cs_rank_ret", "f_cs_zscore_vol", "f_ret_market_neutral", "f_vol_sector_neutral"]
REPO = Path(__file__).resolve().parents[2]


def test_45_unique_names_all_prefixed():
    assert len(REGISTRY) == 45
    assert len(set(FEATURE_NAMES)) == 45
    assert all(n.startswith("f_") for n in FEATURE_NAMES)


def test_family_counts():
    assert family_counts() == {"price": 15, "volume": 10, "cross_sectional": 12, "residual": 8}
    assert family_counts() == EXPECTED_COUNTS


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_names_present(name):
    assert name in FEATURE_NAMES


def test_lookbacks_and_formulas_declared():
    for s in REGISTRY:
        assert isinstance(s.lookback, int) and 0 <= s.lookback <= MAX_LOOKBACK, s.name
        assert len(s.formula) > 20, s.name
        assert s.lookback == s.expr.lookback, s.name  # derived, never typed
    assert max(s.lookback for s in REGISTRY) == MAX_LOOKBACK


def test_families_are_contiguous_in_output_order():
    families = [s.family for s in REGISTRY]
    assert families == sorted(families, key=["price", "volume", "cross_sectional",
                                             "residual"].index)


def test_committed_docs_are_up_to_date():
    committed = (REPO / "docs" / "features.md").read_text(encoding="utf-8")
    assert committed == docs.render(), "run: python -m aurora.features.docs"
    for name in FEATURE_NAMES:
        assert f"`{name}`" in committed
