"""One self-contained HTML page for a segment report or a KPI report, charts included.

Marketers forward these pages by e-mail and open them on a train: everything
is in the one file. Charts are drawn by matplotlib (Agg backend, imported here
only, so that the CLI starts fast) and embedded as inline SVG with text drawn
as paths: no font, script, style sheet or image is fetched from anywhere.
Every string a user wrote (segment names and labels, rule text, campaign
names) goes through Jinja's autoescaping; matplotlib escapes the text it puts
in SVG comments.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

from .kpi import EVENTS, KpiReport
from .movements import Movements
from .quality import QualityReport, fr, pct, verdict_homogeneity

_ENV = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["fr"] = fr
_ENV.filters["pct"] = pct

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3}td.n{text-align:right}.warn{color:#9a5b00}.dim{color:#777}
svg{max-width:100%;height:auto}
"""

PAGE = _ENV.from_string("""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>{{ style }}</style></head><body>
<h1>{{ title }}</h1>
{% for p in intro %}<p>{{ p }}</p>{% endfor %}
{% if warnings %}<h2>Points d'attention</h2><ul>
{% for w in warnings %}<li class="warn">{{ w }}</li>{% endfor %}</ul>{% endif %}
{% for s in sections %}<h2>{{ s.title }}</h2>
{% if s.chart %}<figure>{{ s.chart }}</figure>{% endif %}
{% if s.rows %}<table><tr>{% for h in s.head %}<th>{{ h }}</th>{% endfor %}</tr>
{% for r in s.rows %}<tr>{% for c in r %}
<td{% if loop.index > 1 %} class="n"{% endif %}>{{ c }}</td>
{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% for p in s.notes %}<p class="dim">{{ p }}</p>{% endfor %}
{% endfor %}
</body></html>
""")


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
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(labels) + 1))
    ax.barh(labels[::-1], values[::-1], color="#4c78a8")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def _heatmap(names: list[str], matrix: Any) -> Markup:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1 + 0.8 * len(names), 0.8 + 0.7 * len(names)))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, str(int(matrix[i][j])), ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="contacts en commun")
    ax.set_title("Chevauchement des segments")
    return _svg(fig)


def _profile_chart(q: QualityReport) -> Markup | None:
    """Each segment's mean of each metric, as a percentage of the whole base's mean."""
    cols = [c for c in q.metrics if q.base.get(c) and q.base[c].mean]
    segs = [s for s in q.segments if s.size]
    if not cols or not segs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(cols) * max(1, len(segs)) / 2 + 1.5))
    height = 0.8 / len(segs)
    for k, s in enumerate(segs):
        vals = [100 * (s.stats[c].mean or 0) / (q.base[c].mean or 1) for c in cols]
        ax.barh([i + k * height for i in range(len(cols))], vals, height=height, label=s.label)
    ax.axvline(100, color="#333", linewidth=1)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(cols))], [q.metrics[c] for c in cols])
    ax.invert_yaxis()
    ax.set_xlabel("moyenne du segment, en % de la moyenne de la base (100 = comme la base)")
    ax.legend(fontsize=7)
    ax.set_title("Profil des segments")
    return _svg(fig)


def quality_page(q: QualityReport, moves: Movements | None, tz: Any) -> str:
    day = q.as_of.tz_convert(tz).strftime("%d/%m/%Y")
    intro = [
        f"{q.description}" if q.description else "",
        f"{fr(q.total, 0)} contacts au {day}, mode « {q.mode} » ; {fr(q.excluded, 0)} exclus "
        f"par la règle d'exclusion, {fr(q.unassigned, 0)} dans aucun segment.",
        f"Homogénéité : {pct(q.homogeneity.score, 0)} de la variance des critères expliquée "
        f"par les segments (êta² moyen) — {verdict_homogeneity(q.homogeneity.score)}.",
    ]
    sizes = [s.size for s in q.segments]
    sections: list[dict[str, Any]] = [{
        "title": "Tailles et parts",
        "chart": _bars([s.label for s in q.segments], sizes, "Taille des segments", "contacts"),
        "head": ["segment", "contacts", "part de la base", "dispersion / base"],
        "rows": [[f"{s.label} ({s.name})", fr(s.size, 0), pct(s.share),
                  fr(s.spread, 2) if s.spread is not None else "pas assez de données"]
                 for s in q.segments],
        "notes": ["dispersion / base : écart-type moyen des critères dans le segment divisé par "
                  "celui de la base (moins de 1 : plus homogène que la base)"]}]  # fmt: skip
    if q.overlap is not None:
        names = [s.label for s in q.segments]
        sections.append({"title": "Chevauchements (mode all)",
                         "chart": _heatmap(names, q.overlap.to_numpy()),
                         "head": ["", *names],
                         "rows": [[names[i], *[fr(v, 0) for v in row]]
                                  for i, row in enumerate(q.overlap.to_numpy())]})  # fmt: skip
    head = ["critère", "base"] + [s.label for s in q.segments]
    rows = [
        [q.metrics[c], _mm(q.base[c])]
        + [_mm(s.stats[c]) if s.size else "pas assez de données" for s in q.segments]
        for c in q.metrics
        if c in q.base
    ]
    sections.append({"title": "Profils (moyenne / médiane)", "chart": _profile_chart(q),
                     "head": head, "rows": rows,
                     "notes": [f"êta² de {q.metrics[c]} : {pct(v, 0)}"
                               for c, v in q.homogeneity.eta2.items()]})  # fmt: skip
    for s in q.segments:
        for mix in s.mixes:
            sections.append(
                {
                    "title": f"{s.label} — {mix.title}",
                    "head": [mix.title, "segment", "base"],
                    "rows": [[v, pct(a), pct(b)] for v, a, b in mix.rows],
                }
            )
    if moves is None:
        sections.append({"title": "Mouvements", "notes": [
            "pas de rapport ou d'envoi précédent à comparer : les mouvements apparaîtront au "
            "prochain rapport"]})  # fmt: skip
    else:
        sections.append({"title": f"Mouvements depuis le {_day(moves.previous_day)}",
                         "head": ["segment", "entrés", "sortis", "restés", "pourquoi"],
                         "rows": [[f.name, fr(f.entered, 0), fr(f.left, 0), fr(f.stayed, 0),
                                   ", ".join(f"{r} ({n})" for r, n in f.reasons[:3]) or "—"]
                                  for f in moves.flows],
                         "notes": (["les règles ont changé depuis"] if moves.rules_changed
                                   else [])})  # fmt: skip
    title = f"Rapport de segmentation — {q.ruleset}"
    return PAGE.render(title=title, style=STYLE, intro=[p for p in intro if p],
                       warnings=q.warnings, sections=sections)  # fmt: skip


def _day(iso: str) -> str:
    return "/".join(reversed(iso.split("-")))


def _mm(st: Any) -> str:
    return "pas assez de données" if st.mean is None else f"{fr(st.mean)} / {fr(st.median)}"


def _kpi_chart(r: KpiReport) -> Markup | None:
    groups = [g for g in r.groups if any(g.rates.get(e) for e in (*EVENTS, "conversion"))]
    if not groups:
        return None
    plt = _plt()
    measures = [e for e in ("open", "click", "conversion") if any(g.rates.get(e) for g in groups)]
    fig, axes = plt.subplots(1, len(measures), figsize=(3.6 * len(measures), 0.35 * len(groups)
                                                         + 1.2), squeeze=False)  # fmt: skip
    titles = {"open": "taux d'ouverture", "click": "taux de clic", "conversion": "conversion"}
    for ax, e in zip(axes[0], measures, strict=True):
        shown = [g for g in groups if g.rates.get(e)]
        vals = [100 * g.rates[e].value for g in shown]  # type: ignore[union-attr]
        los = [max(0.0, v - 100 * g.rates[e].ci[0]) for v, g in zip(vals, shown, strict=True)]  # type: ignore[union-attr]
        his = [max(0.0, 100 * g.rates[e].ci[1] - v) for v, g in zip(vals, shown, strict=True)]  # type: ignore[union-attr]
        ax.barh(
            [g.name for g in shown][::-1],
            vals[::-1],
            xerr=[los[::-1], his[::-1]],
            color="#4c78a8",
            ecolor="#333",
            capsize=3,
        )
        ax.set_title(f"{titles[e]} (%, IC 95 %)")
    return _svg(fig)


def kpi_page(r: KpiReport) -> str:
    measures = [*EVENTS, "conversion"]
    rows = []
    for g in r.groups:
        cells = [g.name, fr(g.n, 0)]
        for e in measures:
            rate = g.rates.get(e)
            cells.append("—" if rate is None else f"{pct(rate.value)} ({pct(rate.ci[0])} à "
                         f"{pct(rate.ci[1])})")  # fmt: skip
        rpr = g.revenue_per_recipient
        cells.append("—" if rpr is None else f"{fr(rpr, 2)} €")
        rows.append(cells)
    sections = [{"title": "Résultats par segment et variante", "chart": _kpi_chart(r),
                 "head": ["groupe", "contacts", "ouverture", "clic", "désabonnement",
                          "conversion", "revenu / destinataire"], "rows": rows,
                 "notes": ["— : non défini (témoins : ni ouverture ni clic) ou pas assez de "
                           "données"]},  # fmt: skip
                {"title": "Verdicts", "head": ["verdict (IC 95 %)"],
                 "rows": [[c.verdict] for c in r.comparisons]}]  # fmt: skip
    intro = [f"Envoi {r.run_id}, fenêtre d'attribution de {r.window} jours après l'envoi."]
    return PAGE.render(title=f"Résultats de la campagne {r.campaign}", style=STYLE, intro=intro,
                       warnings=r.notes, sections=sections)  # fmt: skip
