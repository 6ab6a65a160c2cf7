"""Cross-sectional features (12): per-date ranks, z-scores and relative strength.

Each is computed on one date at a time over the symbols whose input feature is present on
that date (the universe members with a full look-back); a symbol with a missing input gets a
missing output. Percentile ranks are average rank / count, in (0, 1] (pandas
`rank(pct=True)`); z-scores use the sample std (ddof=1) and are missing when it is 0. Peers
for the sector versions are the symbols of the same sector on the same date ("Unknown" is a
sector too).
"""

from __future__ import annotations

from aurora.features.ops import cs_demean, cs_pct_rank, cs_zscore
from aurora.features.spec import FeatureSpec

SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("f_cs_rank_ret", "cross_sectional", 1,
                "percentile rank of f_ret_1d across symbols on the date",
                lambda w: cs_pct_rank(w["f_ret_1d"]), stage="cross"),
    FeatureSpec("f_cs_zscore_vol", "cross_sectional", 5,
                "cross-sectional z-score of f_vol_5d on the date",
                lambda w: cs_zscore(w["f_vol_5d"]), stage="cross"),
    FeatureSpec("f_cs_rank_ret_5d", "cross_sectional", 5,
                "percentile rank of f_ret_5d on the date",
                lambda w: cs_pct_rank(w["f_ret_5d"]), stage="cross"),
    FeatureSpec("f_cs_rank_ret_20d", "cross_sectional", 20,
                "percentile rank of f_ret_20d on the date",
                lambda w: cs_pct_rank(w["f_ret_20d"]), stage="cross"),
    FeatureSpec("f_cs_rank_mom_12_1", "cross_sectional", 252,
                "percentile rank of f_mom_12_1 on the date",
                lambda w: cs_pct_rank(w["f_mom_12_1"]), stage="cross"),
    FeatureSpec("f_cs_zscore_volume_surprise", "cross_sectional", 20,
                "cross-sectional z-score of f_volume_surprise on the date",
                lambda w: cs_zscore(w["f_volume_surprise"]), stage="cross"),
    FeatureSpec("f_cs_rank_amihud", "cross_sectional", 20,
                "percentile rank of f_amihud_illiquidity on the date",
                lambda w: cs_pct_rank(w["f_amihud_illiquidity"]), stage="cross"),
    FeatureSpec("f_cs_rank_turnover", "cross_sectional", 268,
                "percentile rank of f_turnover_20d on the date",
                lambda w: cs_pct_rank(w["f_turnover_20d"]), stage="cross"),
    FeatureSpec("f_cs_rank_dollar_volume", "cross_sectional", 19,
                "percentile rank of f_log_dollar_volume_20d on the date (size/liquidity rank)",
                lambda w: cs_pct_rank(w["f_log_dollar_volume_20d"]), stage="cross"),
    FeatureSpec("f_rs_market_ret_20d", "cross_sectional", 20,
                "f_ret_20d minus the equal-weight mean f_ret_20d of all symbols on the date"
                " (relative strength against the market)",
                lambda w: cs_demean(w["f_ret_20d"]), stage="cross"),
    FeatureSpec("f_rs_sector_ret_20d", "cross_sectional", 20,
                "f_ret_20d minus the equal-weight mean f_ret_20d of the symbol's sector on the"
                " date (relative strength against peers)",
                lambda w: cs_demean(w["f_ret_20d"], w.sector_codes), stage="cross"),
    FeatureSpec("f_rs_sector_rank_ret_20d", "cross_sectional", 20,
                "percentile rank of f_ret_20d within the symbol's sector on the date",
                lambda w: cs_pct_rank(w["f_ret_20d"], w.sector_codes), stage="cross"),
)
