"""What a campaign declares before it looks at its results: the `kpi` error budget.

A verdict is only as honest as the hypotheses fixed before the data came in:
the margin inside which two letters count as equivalent, the smallest effect
worth detecting, the level and power, and how a report's many comparisons share
one error budget. They live in the campaign's table of segmerge.toml::

    [campaigns.profils]
    kpi_margin = 1.0      # points: |A - B| under 1 point counts as "no real difference"
    kpi_mde = 2.0         # points: the smallest rise worth a campaign
    kpi_alpha = 0.05
    kpi_power = 0.8
    kpi_correction = "holm"   # or "benjamini-hochberg"

Without ``kpi_margin`` no equivalence is ever claimed; without ``kpi_mde`` the
report cannot say how many more recipients a test needs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KpiConfig(BaseModel):
    """The campaign fields `kpi` reads (CampaignConfig inherits them)."""

    model_config = ConfigDict(extra="forbid")

    #: equivalence margin of rates, in percentage points (TOST); none: never "equivalent"
    kpi_margin: float | None = Field(default=None, gt=0, le=50)
    #: the same for revenue per recipient, in the workspace currency
    kpi_revenue_margin: float | None = Field(default=None, gt=0)
    #: minimal detectable effect of rates, in points: what "N more recipients" aims at
    kpi_mde: float | None = Field(default=None, gt=0, le=50)
    #: the same for revenue per recipient, in the workspace currency
    kpi_revenue_mde: float | None = Field(default=None, gt=0)
    #: the report's error budget: the chance of any false verdict (Holm) or their share (BH)
    kpi_alpha: float = Field(default=0.05, gt=0, le=0.2)
    kpi_power: float = Field(default=0.8, ge=0.5, lt=1)
    kpi_correction: Literal["holm", "benjamini-hochberg"] = "holm"
