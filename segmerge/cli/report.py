"""The `segmerge report RULES` and `segmerge kpi CAMPAIGN` commands.

Kept out of bot.py (which calls :func:`register`). They only parse, call the
engine (:mod:`segmerge.report.quality`, :mod:`segmerge.report.movements`,
:mod:`segmerge.report.kpi`) and print rich tables in French; ``--html FILE`` writes the
self-contained page of :mod:`segmerge.report.html` (the only path that
imports matplotlib). User errors are SegmergeErrors: one line, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from segmerge.cli.console import out
from segmerge.cli.options import AsOfOpt, WorkspaceOpt, load_workspace
from segmerge.errors import ConfigError
from segmerge.i18n import _, day, label, money, ngettext, number, percent, percent_of


def report_cmd(
    rules: Annotated[Path, typer.Argument(help="Rule set file, e.g. segrules/profils-vpc.yaml")],
    source: Annotated[str | None, typer.Option("--source", help="Source name.")] = None,
    as_of: AsOfOpt = None,
    html: Annotated[Path | None, typer.Option("--html", help="Also write this HTML page.")] = None,
    min_size: Annotated[
        int, typer.Option("--min-size", help="Warn under this many contacts.")
    ] = 50,
    workspace: WorkspaceOpt = None,
) -> None:
    """Segment quality: sizes, overlaps, profiles, homogeneity, movements and warnings.

    Example: segmerge report segrules/profils-vpc.yaml --html rapport.html
    """
    from segmerge.report.movements import movements, save_segmented
    from segmerge.report.quality import analyse
    from segmerge.segment.segmentation import segment

    if min_size < 0:
        raise ConfigError(_("expected a number of contacts, 0 or more"), field="--min-size")
    ws = load_workspace(workspace)
    seg = segment(ws, Path(rules).resolve(), source_name=source, as_of=as_of, order_categories=True)
    q = analyse(seg, min_size, ws.tz)
    moves = movements(ws, seg)
    save_segmented(ws, seg)
    print_quality(q, moves, ws.tz)
    if html is not None:
        from segmerge.report.html import quality_page

        html.write_text(quality_page(q, moves, ws.tz), encoding="utf-8")
        out.print(escape(label(_("Page written")) + f" {html}"))


def print_quality(q: Any, moves: Any, tz: Any) -> None:
    from rich.table import Table

    from segmerge.report.quality import verdict_homogeneity

    contacts = ngettext("{n} contact", "{n} contacts", q.total).format(n=number(q.total))
    title = _("{rules} — {contacts}, as of {day}").format(
        rules=q.ruleset, contacts=contacts, day=day(q.as_of.tz_convert(tz).date())
    )
    t = Table(title=escape(title))
    for c, j in (
        (_("segment"), "left"),
        (_("label"), "left"),
        (_("contacts"), "right"),
        (_("share"), "right"),
        (_("spread / base"), "right"),
    ):
        t.add_column(c, justify=j)  # type: ignore[arg-type]
    for s in q.segments:
        spread = number(s.spread, 2) if s.spread is not None else _("not enough data")
        t.add_row(escape(s.name), escape(s.label), number(s.size), percent(s.share), spread)
    t.add_row(
        f"[dim]{escape(_('(excluded)'))}[/]",
        "",
        number(q.excluded),
        percent_of(q.excluded, q.total),
        "",
    )
    t.add_row(
        f"[dim]{escape(_('(none)'))}[/]",
        "",
        number(q.unassigned),
        percent_of(q.unassigned, q.total),
        "",
    )
    out.print(t)
    if q.overlap is not None:
        o = Table(title=_("Overlaps (contacts in both segments)"))
        o.add_column("")
        for name in q.overlap.columns:
            o.add_column(escape(str(name)), justify="right")
        for name, row in q.overlap.iterrows():
            o.add_row(escape(str(name)), *(number(v) for v in row))
        out.print(o)
    p = Table(title=_("Profiles: mean / median (whole base first)"))
    p.add_column(_("criterion"))
    p.add_column(_("base"), justify="right")
    for s in q.segments:
        p.add_column(escape(s.label), justify="right")
    for c, name in q.metrics.items():
        if c in q.base:
            cells = [_mm(s.stats[c]) if s.size else _("not enough data") for s in q.segments]
            p.add_row(escape(name), _mm(q.base[c]), *cells)
    out.print(p)
    for s in q.segments:
        for mix in s.mixes:
            parts = ", ".join(
                _("{value} {share} (base {base})").format(
                    value=escape(v), share=percent(a, 0), base=percent(b, 0)
                )
                for v, a, b in mix.rows
            )
            out.print(f"[bold]{escape(s.label)}[/] — {label(mix.title)} {parts}", highlight=False)
    h = q.homogeneity
    said = _(
        "{share} of the variance of the rules' criteria explained by the segments "
        "(mean eta²) — {verdict}"
    )
    said = said.format(share=percent(h.score, 0), verdict=verdict_homogeneity(h.score))
    out.print("\n" + label(_("Homogeneity")) + " " + said, highlight=False)
    for c, v in h.eta2.items():
        f = h.pseudo_f.get(c)
        shown = _("eta² {share}, F {f}").format(
            share=percent(v, 0), f=number(f, 1) if f is not None else "—"
        )
        out.print(f"  {label(escape(q.metrics[c]))} {shown}", highlight=False)
    print_movements(moves)
    for w in q.warnings:
        out.print(f"[yellow]![/] {escape(w)}", highlight=False)


def _mm(st: Any) -> str:
    if st.mean is None:
        return _("not enough data")
    return f"{number(st.mean, 1)} / {number(st.median, 1)}"


def print_movements(moves: Any) -> None:
    from rich.table import Table

    if moves is None:
        out.print(
            "\n" + label(_("Movements")) + " " + _("no earlier report or send to compare with.")
        )
        return
    from datetime import date

    since = day(date.fromisoformat(moves.previous_day))
    t = Table(title=escape(_("Movements since {day}").format(day=since)))
    why_head = _("why (contacts concerned)")
    for c in (_("segment"), _("entered"), _("left"), _("stayed"), why_head):
        t.add_column(c, justify="left" if c in (_("segment"), why_head) else "right")
    for f in moves.flows:
        why = ", ".join(f"{escape(r)} ({number(n)})" for r, n in f.reasons[:3]) or "—"
        t.add_row(escape(f.name), number(f.entered), number(f.left), number(f.stayed), why)
    out.print(t)
    if moves.rules_changed:
        out.print(
            "[yellow]![/] "
            + escape(_("the rules have changed since: part of the movements comes from that"))
        )
    for f in moves.flows:
        for m in f.examples[:3]:
            before, after = m.before or _("(none)"), m.after or _("(none)")
            out.print(
                f"  {label(escape(m.contact_id))} {escape(before)} → {escape(after)} — "
                f"{escape('; '.join(m.why))}",
                highlight=False,
            )


def kpi_cmd(
    campaign: Annotated[str, typer.Argument(help="Campaign name.")],
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the latest).")
    ] = None,
    window: Annotated[int, typer.Option("--window", help="Attribution window, in days.")] = 14,
    html: Annotated[Path | None, typer.Option("--html", help="Also write this HTML page.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Results of a run by segment and variant, against the holdout and the baseline.

    Example: segmerge kpi profils --window 14 --html resultats.html
    """
    from segmerge.report.kpi import kpi

    ws = load_workspace(workspace)
    r = kpi(ws, campaign, run_id=run_id, window=window)
    print_kpi(r)
    if html is not None:
        from segmerge.report.html import kpi_page

        html.write_text(kpi_page(r), encoding="utf-8")
        out.print(escape(label(_("Page written")) + f" {html}"))


def print_kpi(r: Any) -> None:
    from rich.table import Table

    window = ngettext("{n}-day window", "{n}-day window", r.window).format(n=r.window)
    t = Table(title=escape(f"{r.run_id} — {window} — {r.interval_heading()}"))
    heads = (
        _("group"),
        _("contacts"),
        _("open"),
        _("click"),
        _("unsubscribe"),
        _("conversion"),
        _("revenue / recipient"),
    )
    for c in heads:
        t.add_column(c, justify="left" if c == heads[0] else "right")
    for g in r.groups:
        cells = []
        for e in ("open", "click", "unsubscribe", "conversion"):
            rate = g.rates.get(e)
            cells.append(
                "—"
                if rate is None
                else f"{percent(rate.value)} [dim]({percent(rate.ci[0])}–{percent(rate.ci[1])})[/]"
            )
        rpr = g.revenue_per_recipient
        t.add_row(escape(g.name), number(g.n), *cells, "—" if rpr is None else money(rpr))
    out.print(t)
    for c in r.comparisons:
        out.print(f"• {escape(c.verdict)}", highlight=False)
    for n in r.notes:
        out.print(f"[yellow]![/] {escape(n)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `report` and `kpi` to the segmerge CLI."""
    app.command("report")(report_cmd)
    app.command("kpi")(kpi_cmd)
