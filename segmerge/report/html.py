"""One self-contained HTML page for a segment report or a KPI report, charts included.

Marketers forward these pages by e-mail and open them on a train: everything
is in the one file. Charts (:mod:`segmerge.report.charts`) are inline SVG with
text drawn as paths: no font, script, style sheet or image is fetched from
anywhere. It reads on a phone too (375 px): tables scroll inside their own box,
charts shrink to the screen's width with their text still at 11 px or more,
and each chart keeps its labels clear of its bars and of each other (legends
and the KPI measures are stacked, never side by side). The fixed texts and the
numbers are in the command's language (:mod:`segmerge.i18n`).
Every string a user wrote (segment names and labels, rule text, campaign
names) goes through Jinja's autoescaping; matplotlib escapes the text it puts
in SVG comments.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from jinja2 import Environment

from segmerge import i18n
from segmerge.i18n import _, money, number, percent
from segmerge.report.charts import bars, heatmap, kpi_chart, profile_chart
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
            "chart": bars([s.label for s in q.segments], sizes, _("Segment sizes"), _("contacts")),
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
                "chart": heatmap(names, q.overlap.to_numpy()),
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
            "chart": profile_chart(q),
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
            "chart": kpi_chart(r),
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
