"""Do the segments differ on what their rules read? Eta squared, pseudo-F, KS pairs.

The `report` command's homogeneity verdict and its "these two segments look alike"
warning, apart from the report's assembly (:mod:`segmerge.report.quality`) so that
tests run the statistics on arrays.

Homogeneity is the share of variance explained (eta squared) of each metric the
rules read, with the contacts grouped by their (first) segment:
``eta² = SS_between / SS_total``, 0 when the segments do not differ on that
metric at all, 1 when every segment is a single value. The pseudo-F is
``(SS_between / (k - 1)) / (SS_within / (N - k))`` (one-way ANOVA's F). Two
segments are *indistinct* when a two-sample Kolmogorov–Smirnov test finds no
difference (p > 0.05) on every metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

ALPHA = 0.05
MIN_FOR_TEST = 5  # fewer values than this in a segment: no test, "not enough data"


@dataclass
class Homogeneity:
    eta2: dict[str, float | None]  # per rule metric
    pseudo_f: dict[str, float | None]
    score: float | None  # mean eta² over the metrics that have one


def homogeneity(values: dict[str, np.ndarray], groups: np.ndarray) -> Homogeneity:
    """Eta squared and pseudo-F of each metric, contacts grouped by ``groups`` (None: none)."""
    eta2: dict[str, float | None] = {}
    pf: dict[str, float | None] = {}
    for c, x in values.items():
        ok = ~np.isnan(x) & pd.notna(groups)
        xs, gs = x[ok], groups[ok]
        labels, codes = np.unique(gs.astype(str), return_inverse=True)
        k, n = len(labels), len(xs)
        if k < 2 or n <= k:
            eta2[c] = pf[c] = None
            continue
        counts = np.bincount(codes, minlength=k)
        means = np.bincount(codes, weights=xs, minlength=k) / counts
        sst = float(((xs - xs.mean()) ** 2).sum())
        ssb = float((counts * (means - xs.mean()) ** 2).sum())
        ssw = sst - ssb
        eta2[c] = ssb / sst if sst > 0 else None
        pf[c] = (ssb / (k - 1)) / (ssw / (n - k)) if ssw > 1e-12 * max(sst, 1.0) else None
    known = [v for v in eta2.values() if v is not None]
    return Homogeneity(eta2, pf, float(np.mean(known)) if known else None)


def indistinct_pairs(
    values: dict[str, np.ndarray], members: dict[str, np.ndarray]
) -> list[tuple[str, str]]:
    """Pairs of segments no metric tells apart (KS p > 0.05 on each), when testable."""
    from scipy.stats import ks_2samp  # lazy: only the report needs it

    out: list[tuple[str, str]] = []
    for a, b in combinations(members, 2):
        tested = 0
        differ = False
        for x in values.values():
            xa, xb = x[members[a]], x[members[b]]
            xa, xb = xa[~np.isnan(xa)], xb[~np.isnan(xb)]
            if len(xa) < MIN_FOR_TEST or len(xb) < MIN_FOR_TEST:
                continue
            tested += 1
            if float(ks_2samp(xa, xb).pvalue) <= ALPHA:
                differ = True
                break
        if tested and not differ:
            out.append((a, b))
    return out
