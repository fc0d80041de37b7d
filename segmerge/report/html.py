"""One self-contained HTML page for a segment report or a KPI report, charts included.

Marketers forward these pages by e-mail and open them on a train: everything
is in the one file. Charts are drawn by matplotlib (Agg backend, imported here
only, so that the CLI starts fast) and embedded as inline SVG with text drawn
as paths: no font, script, style sheet or image is fetched from anywhere.
It reads on a phone too (375 px): tables scroll inside their own box, charts
shrink to the screen's width, and each chart keeps its labels clear of its bars
and of each other (legends and the KPI measures are stacked, never side by side).
The fixed texts are in the command's language (:mod:`segmerge.i18n`).
Every string a user wrote (segment names and labels, rule text, campaign
names) goes through Jinja's autoescaping; matplotlib escapes the text it puts
in SVG comments.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from segmerge import i18n
from segmerge.i18n import _, money, number, percent
from segmerge.report.kpi import EVENTS, KpiReport
from segmerge.report.movements import Movements
from segmerge.report.quality import QualityReport, verdict_homogeneity

_ENV = Environment(
    autoescape=True, trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.i18n"]
)
# old-style callables: the page's msgids are the Python code's, `str.format` fields included
_ENV.install_gettext_callables(  # type: ignore[attr-defined]
    lambda m: i18n._(m), lambda s, p, n: i18n.ngettext(s, p, n), newstyle=False
)

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1,h2{overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%;margin:.5em 0 1.5em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td.n{text-align:right;white-space:nowrap}.warn{color:#9a5b00}.dim{color:#777}
figure{margin:1em 0}svg{display:block;max-width:100%;height:auto}
@media (max-width:600px){body{margin:1em auto;padding:0 .6em;font-size:15px}
h1{font-size:1.4em}td,th{padding:.2em .4em}}
"""

PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<style>{{ style }}</style></head><body>
<h1>{{ title }}</h1>
{% for p in intro %}<p>{{ p }}</p>{% endfor %}
{% if warnings %}<h2>{{ _("Points to watch") }}</h2><ul>
{% for w in warnings %}<li class="warn">{{ w }}</li>{% endfor %}</ul>{% endif %}
{% for s in sections %}<h2>{{ s.title }}</h2>
{% if s.chart %}<figure>{{ s.chart }}</figure>{% endif %}
{% if s.rows %}<div class="scroll"><table><tr>{% for h in s.head %}<th>{{ h }}</th>{% endfor %}</tr>
{% for r in s.rows %}<tr>{% for c in r %}
<td{% if loop.index > 1 %} class="n"{% endif %}>{{ c }}</td>
{% endfor %}</tr>{% endfor %}</table></div>{% endif %}
{% for p in s.notes %}<p class="dim">{{ p }}</p>{% endfor %}
{% endfor %}
</body></html>
""")


def fr(x: float | None, digits: int = 1) -> str:
    """A number in the page's language, a dash for nothing (trailing zeros dropped)."""
    if x is None or (isinstance(x, float) and x != x):
        return "—"
    return number(round(float(x), digits) + 0.0, digits)


def pct(share: float | None, digits: int = 1) -> str:
    return "—" if share is None else percent(share, digits)


def _render(**values: Any) -> str:
    return PAGE.render(style=STYLE, lang=i18n.lang(), **values)


def _bar_ids(bars: Any, tag: str) -> None:
    """Name each bar in the SVG (``bar_<tag>_<k>``): what tests/test_pages_mobile.py checks
    the labels against."""
    for k, patch in enumerate(bars.patches):
        patch.set_gid(f"bar_{tag}_{k}")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.fonttype": "path",
            "font.size": 9,
            "svg.hashsalt": "segmerge",
            "text.parse_math": False,
        }
    )
    return plt


def _svg(fig: Any) -> Markup:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight",
        metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
    )
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return Markup(text)  # noqa: S704 - produced by matplotlib, which escapes its text


def _bars(labels: list[str], values: Sequence[float], title: str, xlabel: str) -> Markup:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(labels) + 1), layout="constrained")
    _bar_ids(ax.barh(labels[::-1], values[::-1], color="#4c78a8"), "size")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def _heatmap(names: list[str], matrix: Any) -> Markup:
    plt = _plt()
    # no layout engine: cells keep their size and the tight bounding box grows around long
    # names (a constrained layout shrank the cells until their counts ran together)
    fig, ax = plt.subplots(figsize=(2 + 0.8 * len(names), 1.5 + 0.8 * len(names)))
    im = ax.imshow(matrix, cmap="Blues")
    # upright or rotated 45°, long names run into each other; at 90° each has its column
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    top = max(float(matrix.max()), 1.0)
    for i in range(len(names)):
        for j in range(len(names)):
            dark = float(matrix[i][j]) > 0.6 * top  # white on the darkest blues, to be read
            ax.text(
                j,
                i,
                fr(matrix[i][j], 0),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    fig.colorbar(im, ax=ax, label=_("contacts in common"))
    ax.set_title(_("Segment overlaps"))
    return _svg(fig)


def _profile_chart(q: QualityReport) -> Markup | None:
    """Each segment's mean of each metric, as a percentage of the whole base's mean."""
    cols = [c for c in q.metrics if q.base.get(c) and q.base[c].mean]
    segs = [s for s in q.segments if s.size]
    if not cols or not segs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(
        figsize=(6, 0.25 * len(cols) * max(1, len(segs)) + 2.2), layout="constrained"
    )
    height = 0.8 / len(segs)
    for k, s in enumerate(segs):
        vals = [100 * (s.stats[c].mean or 0) / (q.base[c].mean or 1) for c in cols]
        bars = ax.barh(
            [i + k * height for i in range(len(cols))], vals, height=height, label=s.label
        )
        _bar_ids(bars, f"profile{k}")
    ax.axvline(100, color="#333", linewidth=1)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(cols))], [q.metrics[c] for c in cols])
    ax.invert_yaxis()
    ax.set_xlabel(_("segment mean, as % of the base's mean\n(100 = like the base)"))
    # under the chart, never over its bars (matplotlib's "best" spot can cover some)
    fig.legend(loc="outside lower center", ncols=2, fontsize=7)
    ax.set_title(_("Segment profiles"))
    return _svg(fig)


def quality_page(q: QualityReport, moves: Movements | None, tz: Any) -> str:
    day = i18n.day(q.as_of.tz_convert(tz))
    intro = [
        f"{q.description}" if q.description else "",
        _(
            "{n} contacts on {day}, mode “{mode}”; {excluded} excluded by the exclusion rule, "
            "{none} in no segment."
        ).format(
            n=number(q.total),
            day=day,
            mode=q.mode,
            excluded=number(q.excluded),
            none=number(q.unassigned),
        ),
        _(
            "Homogeneity: {share} of the criteria's variance explained by the segments (mean "
            "eta²) — {verdict}."
        ).format(
            share=pct(q.homogeneity.score, 0), verdict=verdict_homogeneity(q.homogeneity.score)
        ),
    ]
    sizes = [s.size for s in q.segments]
    not_enough = _("not enough data")
    sections: list[dict[str, Any]] = [
        {
            "title": _("Sizes and shares"),
            "chart": _bars([s.label for s in q.segments], sizes, _("Segment sizes"), _("contacts")),
            "head": [_("segment"), _("contacts"), _("share of the base"), _("spread / base")],
            "rows": [
                [
                    f"{s.label} ({s.name})",
                    fr(s.size, 0),
                    pct(s.share),
                    fr(s.spread, 2) if s.spread is not None else not_enough,
                ]
                for s in q.segments
            ],
            "notes": [
                _(
                    "spread / base: the criteria's mean standard deviation in the segment "
                    "divided by the base's (under 1: more alike than the base)"
                )
            ],
        }
    ]
    if q.overlap is not None:
        names = [s.label for s in q.segments]
        sections.append(
            {
                "title": _("Overlaps (mode all)"),
                "chart": _heatmap(names, q.overlap.to_numpy()),
                "head": ["", *names],
                "rows": [
                    [names[i], *[fr(v, 0) for v in row]]
                    for i, row in enumerate(q.overlap.to_numpy())
                ],
            }
        )
    head = [_("criterion"), _("base")] + [s.label for s in q.segments]
    rows = [
        [q.metrics[c], _mm(q.base[c])]
        + [_mm(s.stats[c]) if s.size else not_enough for s in q.segments]
        for c in q.metrics
        if c in q.base
    ]
    sections.append(
        {
            "title": _("Profiles (mean / median)"),
            "chart": _profile_chart(q),
            "head": head,
            "rows": rows,
            "notes": [
                _("eta² of {criterion}: {share}").format(criterion=q.metrics[c], share=pct(v, 0))
                for c, v in q.homogeneity.eta2.items()
            ],
        }
    )
    for s in q.segments:
        for mix in s.mixes:
            sections.append(
                {
                    "title": f"{s.label} — {mix.title}",
                    "head": [mix.title, _("segment"), _("base")],
                    "rows": [[v, pct(a), pct(b)] for v, a, b in mix.rows],
                }
            )
    if moves is None:
        sections.append(
            {
                "title": _("Movements"),
                "notes": [
                    _(
                        "no earlier report or send to compare with: movements will show in "
                        "the next report"
                    )
                ],
            }
        )
    else:
        sections.append(
            {
                "title": _("Movements since {day}").format(day=_day(moves.previous_day)),
                "head": [_("segment"), _("entered"), _("left"), _("stayed"), _("why")],
                "rows": [
                    [
                        f.name,
                        fr(f.entered, 0),
                        fr(f.left, 0),
                        fr(f.stayed, 0),
                        ", ".join(f"{r} ({n})" for r, n in f.reasons[:3]) or "—",
                    ]
                    for f in moves.flows
                ],
                "notes": ([_("the rules have changed since")] if moves.rules_changed else []),
            }
        )
    title = _("Segmentation report — {rules}").format(rules=q.ruleset)
    return _render(
        title=title, intro=[p for p in intro if p], warnings=q.warnings, sections=sections
    )


def _day(iso: str) -> str:
    """An ISO day ("2026-12-01") in words, in the page's language."""
    return i18n.day(date.fromisoformat(iso[:10]))


def _mm(st: Any) -> str:
    return _("not enough data") if st.mean is None else f"{fr(st.mean)} / {fr(st.median)}"


def _kpi_chart(r: KpiReport) -> Markup | None:
    """One bar chart per measure, stacked: side by side, each one's group names ran over
    its left neighbour's bars, and three charts do not fit a phone's width."""
    groups = [g for g in r.groups if any(g.rates.get(e) for e in (*EVENTS, "conversion"))]
    if not groups:
        return None
    plt = _plt()
    measures = [e for e in ("open", "click", "conversion") if any(g.rates.get(e) for g in groups)]
    fig, axes = plt.subplots(
        len(measures),
        1,
        figsize=(6, len(measures) * (0.3 * len(groups) + 0.9)),
        squeeze=False,
        layout="constrained",
    )
    titles = {"open": _("open rate"), "click": _("click rate"), "conversion": _("conversion")}
    for ax, e in zip(axes[:, 0], measures, strict=True):
        shown = [g for g in groups if g.rates.get(e)]
        vals = [100 * g.rates[e].value for g in shown]  # type: ignore[union-attr]
        los = [max(0.0, v - 100 * g.rates[e].ci[0]) for v, g in zip(vals, shown, strict=True)]  # type: ignore[union-attr]
        his = [max(0.0, 100 * g.rates[e].ci[1] - v) for v, g in zip(vals, shown, strict=True)]  # type: ignore[union-attr]
        bars = ax.barh(
            [g.name for g in shown][::-1],
            vals[::-1],
            xerr=[los[::-1], his[::-1]],
            color="#4c78a8",
            ecolor="#333",
            capsize=3,
        )
        _bar_ids(bars, e)
        ax.set_title(_("{measure} (%, with its confidence interval)").format(measure=titles[e]))
    return _svg(fig)


def kpi_page(r: KpiReport) -> str:
    measures = [*EVENTS, "conversion"]
    rows = []
    for g in r.groups:
        cells = [g.name, fr(g.n, 0)]
        for e in measures:
            rate = g.rates.get(e)
            cells.append(
                "—"
                if rate is None
                else _("{rate} ({low} to {high})").format(
                    rate=pct(rate.value), low=pct(rate.ci[0]), high=pct(rate.ci[1])
                )
            )
        rpr = g.revenue_per_recipient
        cells.append("—" if rpr is None else money(rpr))
        rows.append(cells)
    sections = [
        {
            "title": f"{_('Results by segment and variant')} — {r.interval_heading()}",
            "chart": _kpi_chart(r),
            "head": [
                _("group"),
                _("contacts"),
                _("opens"),
                _("clicks"),
                _("unsubscribes"),
                _("conversion"),
                _("revenue / recipient"),
            ],
            "rows": rows,
            "notes": [_("“—”: not defined (holdout: no opens or clicks) or not enough data")],
        },
        {
            "title": _("Verdicts"),
            "head": [_("verdict")],
            "rows": [[c.verdict] for c in r.comparisons],
        },
    ]
    intro = [
        _("Send {run}, attribution window of {days} days after the send.").format(
            run=r.run_id, days=number(r.window)
        )
    ]
    return _render(
        title=_("Results of campaign {name}").format(name=r.campaign),
        intro=intro,
        warnings=r.notes,
        sections=sections,
    )
