"""How good is a segmentation? Sizes, overlaps, profiles, homogeneity and plain warnings.

Marketing practice says a segmentation is worth its letters when it has 2 to 4
segments, each big enough to measure, homogeneous inside and distinct from the
others. This module measures exactly that on the frame a run would use (the
same :class:`~segmerge.segment.segmentation.Segmented`), column-wise, so that the
`report` command, its HTML page and the tests share one set of numbers.

Homogeneity and distinctness are measured by :mod:`segmerge.report.separation`;
per segment, the *spread* is the standard deviation of each metric inside the
segment divided by its standard deviation in the whole base (< 1: tighter than
the base).

The interval and sample-size helpers :mod:`segmerge.report.kpi` uses live in
:mod:`segmerge.report.stats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo

import numpy as np
import pandas as pd

from segmerge.i18n import _, ngettext, number, percent
from segmerge.report.coverage import coverage_warnings
from segmerge.report.separation import ALPHA, Homogeneity, homogeneity, indistinct_pairs
from segmerge.rules.ruleset import RuleSet, _static_truth
from segmerge.segment.history import columns_read
from segmerge.segment.segmentation import Segmented

#: Metrics every profile shows, whatever the rules read.
STANDARD_METRICS = ("orders_count", "revenue", "avg_basket", "days_since_last_order")
#: Age bands (lower bound included, upper excluded) and their English msgid: the label is
#: translated where the mix is built, so a French report says "65 ans et plus" and an
#: English one "65 and over".
AGE_BANDS = (
    (0, 25, "under 25"),
    (25, 35, "25–34"),
    (35, 45, "35–44"),
    (45, 55, "45–54"),
    (55, 65, "55–64"),
    (65, 200, "65 and over"),
)


# --- formatting in the report's language -------------------------------------------------------


def fr(x: float | None, digits: int = 1, sign: bool = False) -> str:
    """A number in the command's language ("1 234,5" / "1,234.5"), a dash for nothing."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "—"
    shown = number(round(float(x), digits) + 0.0, digits)
    return f"+{shown}" if sign and not shown.startswith("-") else shown


def pct(share: float | None, digits: int = 1) -> str:
    """A share as a percent in the command's language ("12,5 %" / "12.5%")."""
    return "—" if share is None else percent(share, digits)


# --- which metrics --------------------------------------------------------------------------


def numeric(series: pd.Series) -> np.ndarray | None:
    """Float values (NaN for null) of a number or yes/no column; None for other kinds."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return np.asarray(series.astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    return None


def rule_metrics(rs: RuleSet, frame: pd.DataFrame) -> dict[str, str]:
    """Number and yes/no columns the segments' conditions read (not the exclusion)."""
    out: dict[str, str] = {}
    for seg in rs.segments:
        for c, label in columns_read(seg.expr, frame).items():
            if numeric(frame[c]) is not None:
                out.setdefault(c, label)
    return out


# --- results --------------------------------------------------------------------------------


@dataclass
class Stat:
    mean: float | None
    median: float | None
    count: int  # non-null values


@dataclass
class Mix:
    """Shares of a categorical attribute: (value, share in the segment, share in the base)."""

    title: str
    rows: list[tuple[str, float, float]]


@dataclass
class SegmentQuality:
    name: str
    label: str
    size: int
    share: float
    stats: dict[str, Stat]
    spread: float | None  # mean of std(segment) / std(base) over the rule metrics
    mixes: list[Mix] = field(default_factory=list)
    catch_all: bool = False


@dataclass
class QualityReport:
    ruleset: str
    description: str
    mode: str
    as_of: pd.Timestamp
    total: int
    excluded: int  # by the rule set's exclusion
    unassigned: int  # not excluded, in no segment
    metrics: dict[str, str]  # column -> label: rule metrics then the standard ones
    rule_metrics: list[str]
    base: dict[str, Stat]
    base_mixes: list[Mix]
    segments: list[SegmentQuality]
    overlap: pd.DataFrame | None  # mode all: contacts in both row and column segments
    homogeneity: Homogeneity
    indistinct: list[tuple[str, str]]
    warnings: list[str]


def _stat(values: np.ndarray) -> Stat:
    v = values[~np.isnan(values)]
    if not len(v):
        return Stat(None, None, 0)
    return Stat(float(v.mean()), float(np.median(v)), int(len(v)))


def _std(values: np.ndarray) -> float | None:
    v = values[~np.isnan(values)]
    return float(v.std()) if len(v) >= 2 else None


def _top(values: pd.Series, n: int = 3) -> pd.Series:
    """The ``n`` most frequent values' shares, ties by name: the same report whatever
    order the rows came in (a database's GROUP BY on two threads has none)."""
    shares = values.value_counts(normalize=True)
    order = sorted(range(len(shares)), key=lambda i: (-shares.iloc[i], str(shares.index[i])))
    return shares.iloc[order[:n]]


def _mixes(seg: Segmented, mask: np.ndarray, cats: pd.DataFrame | None) -> list[Mix]:
    """Top 3 order categories, age bands and top regions, in the segment and the base."""
    frame = seg.frame
    out: list[Mix] = []
    if cats is not None and len(cats):
        ids = set(frame["contact_id"].astype("string")[mask].tolist())
        mine = cats[cats["contact_id"].isin(ids)]["category"]
        base = cats["category"].value_counts(normalize=True)
        if len(mine):
            top = _top(mine)
            out.append(
                Mix(
                    _("ordered categories"),
                    [(str(k), float(v), float(base.get(k, 0.0))) for k, v in top.items()],
                )
            )
    if "age" in frame.columns and (age := numeric(frame["age"])) is not None:
        names = [_age_band(b[2]) for b in AGE_BANDS]
        bands = pd.Series(
            pd.cut(age, [b[0] for b in AGE_BANDS] + [AGE_BANDS[-1][1]], right=False, labels=names)
        )
        mine_b = bands[mask].value_counts(normalize=True)
        base_b = bands.value_counts(normalize=True)
        if mine_b.sum() > 0:
            out.append(
                Mix(
                    _("age"),
                    [
                        (str(b), float(mine_b.get(b, 0.0)), float(base_b.get(b, 0.0)))
                        for b in names
                        if base_b.get(b, 0) > 0
                    ],
                )
            )
    for col in ("region", "région"):
        if col in frame.columns and numeric(frame[col]) is None:
            reg = frame[col].astype("string")
            mine_r = _top(reg[mask])
            base_r = reg.value_counts(normalize=True)
            if len(mine_r):
                out.append(
                    Mix(
                        _("region"),
                        [(str(k), float(v), float(base_r.get(k, 0.0))) for k, v in mine_r.items()],
                    )
                )
            break
    return out


def _age_band(msgid: str) -> str:
    """An age band's label in the command's language (the msgids are spelled out so the
    catalog check sees each of them)."""
    labels = {
        "under 25": _("under 25"),
        "25–34": _("25–34"),
        "35–44": _("35–44"),
        "45–54": _("45–54"),
        "55–64": _("55–64"),
        "65 and over": _("65 and over"),
    }
    return labels[msgid]


def analyse(seg: Segmented, min_size: int = 50, tz: tzinfo | None = None) -> QualityReport:
    """Everything `segmerge report` shows about a segmentation, computed once.

    ``unassigned`` counts contacts in no segment who were *not* excluded: the
    excluded are counted once, in ``excluded`` (they used to be in both).
    """
    rs, frame, a = seg.ruleset, seg.frame, seg.assignment
    total = len(frame)
    rmetrics = rule_metrics(rs, frame)
    metrics = dict(rmetrics)
    for c in STANDARD_METRICS:
        if c in frame.columns:
            metrics.setdefault(c, c)
    values = {c: v for c in metrics if (v := numeric(frame[c])) is not None}
    tested = {c: values[c] for c in rmetrics} or {
        c: values[c] for c in STANDARD_METRICS if c in values
    }
    cats = None
    if "category" in seg.tables.orders.columns:
        cats = seg.tables.orders[["contact_id", "category"]].dropna()
        cats = cats.assign(contact_id=cats["contact_id"].astype("string"))
    everyone = np.ones(total, dtype=bool)
    base_std = {c: _std(values[c]) for c in tested}
    segments: list[SegmentQuality] = []
    members: dict[str, np.ndarray] = {}
    for s in rs.segments:
        mask = a.matrix[s.name].to_numpy(dtype=bool)
        members[s.name] = mask
        ratios = [
            sd / b
            for c in tested
            if (sd := _std(values[c][mask])) is not None and (b := base_std[c])
        ]
        segments.append(
            SegmentQuality(
                s.name,
                s.label,
                int(mask.sum()),
                float(mask.sum() / total) if total else 0.0,
                {c: _stat(values[c][mask]) for c in values},
                float(np.mean(ratios)) if ratios else None,
                _mixes(seg, mask, cats) if mask.any() else [],
                _static_truth(s.expr) is True,
            )
        )
    overlap = None
    if rs.mode == "all":
        m = a.matrix.to_numpy(dtype=np.int64)
        overlap = pd.DataFrame(m.T @ m, index=a.matrix.columns, columns=a.matrix.columns)
    groups = a.primary.to_numpy(dtype=object, na_value=None)
    homo = homogeneity(tested, groups)
    indistinct = indistinct_pairs(tested, {k: v for k, v in members.items() if v.any()})
    report = QualityReport(
        rs.name,
        rs.description,
        rs.mode,
        seg.as_of,
        total,
        int(a.excluded.sum()),
        int((a.primary.isna() & ~a.excluded).sum()),
        metrics,
        list(rmetrics),
        {c: _stat(values[c]) for c in values},
        _mixes(seg, everyone, cats),
        segments,
        overlap,
        homo,
        indistinct,
        [],
    )
    report.warnings = warnings(report, min_size) + coverage_warnings(seg, tz)
    return report


def warnings(r: QualityReport, min_size: int) -> list[str]:
    """What a marketer should look at, in their words (and their language)."""
    out: list[str] = []
    count = len(r.segments)
    if count < 2 or count > 4:
        out.append(
            ngettext(
                "{n} segment: a good segmentation usually has 2 to 4, homogeneous inside and "
                "distinct from each other",
                "{n} segments: a good segmentation usually has 2 to 4, homogeneous inside and "
                "distinct from each other",
                count,
            ).format(n=number(count))
        )
    labels = {s.name: s.label for s in r.segments}
    for s in r.segments:
        if s.size == 0:
            out.append(
                _(
                    "segment “{label}” is empty: not enough data to describe it or "
                    "measure its results"
                ).format(label=s.label)
            )
        elif s.size < min_size:
            out.append(
                ngettext(
                    "segment “{label}” has only {n} contact (fewer than {min}): too few to "
                    "measure its results reliably",
                    "segment “{label}” has only {n} contacts (fewer than {min}): too few to "
                    "measure its results reliably",
                    s.size,
                ).format(label=s.label, n=number(s.size), min=number(min_size))
            )
        if s.catch_all and s.share > 0.5:
            out.append(
                _(
                    "catch-all segment “{label}” (condition always true) holds {share} "
                    "of the base: the rules do not describe most customers"
                ).format(label=s.label, share=percent(s.share))
            )
    for a, b in r.indistinct:
        out.append(
            _(
                "segments “{a}” and “{b}” differ on none of the rules' criteria "
                "(Kolmogorov-Smirnov test, p > {alpha}): consider merging them"
            ).format(a=labels[a], b=labels[b], alpha=number(ALPHA, 2))
        )
    if r.homogeneity.score is not None and r.homogeneity.score < 0.1 and count >= 2:
        out.append(
            _(
                "the segments look alike: they explain only {share} of the variance of "
                "the rules' criteria"
            ).format(share=percent(r.homogeneity.score, 0))
        )
    return out


def verdict_homogeneity(score: float | None) -> str:
    """A one-line reading of the mean eta², in the command's language."""
    if score is None:
        return _("not enough data to measure homogeneity")
    if score >= 0.5:
        return _("clearly distinct segments")
    if score >= 0.2:
        return _("moderately distinct segments")
    return _("barely distinct segments")
