"""The report's and the kpi page's charts: matplotlib figures as inline SVG, legible on a phone.

Why the sizes: a chart is drawn at a width in inches and the page shrinks it to
the screen (``svg{max-width:100%}``), so on a 375 px phone a 6-inch chart with
9 pt text showed its labels at about 6 px. Every text of a chart is now set at
one size, :func:`font_pt`, the size that still shows at 11 px once a picture
:data:`WIDTH` wide is shrunk to a phone; long names and titles are wrapped, and
when matplotlib's tight bounding box makes the picture wider than that (names
beside a heat map), the plotting area is drawn narrower until the whole fits.
Numbers on the charts (counts, axis ticks) are written in the page's language.

matplotlib (Agg backend) is imported here only, so that the CLI starts fast.
Text is drawn as paths: no font is fetched; matplotlib escapes the text it puts
in SVG comments.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup

from segmerge.i18n import _, number
from segmerge.report.kpi import EVENTS, KpiReport
from segmerge.report.quality import QualityReport

#: the width a chart is drawn at (inches; 96 CSS px each on a desktop screen)
WIDTH = 4.8
#: what a page's content is wide on a 375 px phone (the page's side padding taken off)
PHONE_PX = 350
#: the smallest text a chart may show on that phone (CSS px)
MIN_TEXT_PX = 11


def font_pt(width_in: float = WIDTH) -> float:
    """The text size (pt) that shows at :data:`MIN_TEXT_PX` or more once a picture
    ``width_in`` inches wide is shrunk to a phone (half points, rounded up)."""
    shrink = min(1.0, PHONE_PX / (width_in * 96))
    return math.ceil(MIN_TEXT_PX / shrink * 72 / 96 * 2) / 2


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"svg.fonttype": "path", "svg.hashsalt": "segmerge", "text.parse_math": False}
    )
    return plt


def bar_ids(bars: Any, tag: str) -> None:
    """Name each bar in the SVG (``bar_<tag>_<k>``): what tests/test_pages_mobile.py checks
    the labels against."""
    for k, patch in enumerate(bars.patches):
        patch.set_gid(f"bar_{tag}_{k}")


def wrap(text: str, chars: int = 24) -> str:
    """A name or a title on lines of at most ``chars`` characters (a word is never cut)."""
    return textwrap.fill(text, chars, break_long_words=False) if len(text) > chars else text


def _title_chars() -> int:
    """How many characters of title fit across :data:`WIDTH` at the chart's text size."""
    return int(WIDTH * 72 / (font_pt() * 0.62))


def _numbers(axis: Any) -> None:
    """An axis's ticks in the page's language ("2,5" in French, "2.5" in English)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v, 2)))


#: the margin matplotlib's tight bounding box adds around a picture (inches, each side)
PAD = 0.1


def _save(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight",
        pad_inches=PAD,
        metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
    )
    _plt().close(fig)
    return buf.getvalue()


def _tight_width(fig: Any) -> float:
    """How wide (inches) ``fig`` comes out once saved with its tight bounding box: laid out
    and measured without writing the SVG (writing, text as paths, is the costly part)."""
    fig.draw_without_rendering()
    return float(fig.get_tightbbox().width) + 2 * PAD


def svg(draw: Callable[[float], Any], slope: float = 1.0) -> Markup:
    """The figure ``draw(width in inches)`` makes, as inline SVG whose text stays legible
    on a phone: drawn narrower while its tight bounding box comes out wider than
    :data:`WIDTH` (its labels outside the plotting area), measured before the one save.

    The first width leaves room for the box's margins, which replace the layout engine's
    own around a figure it fills (else every such chart came out too wide, and was drawn
    and saved twice). What sticks out of a chart shrinks less than its width: ``slope``,
    the chart's own first guess of how much (a kpi chart's: half as much), sets the
    second width, so a chart that knows it is drawn and measured once less; each next
    width follows the last two measures. The measure (matplotlib's raster text metrics)
    can fall short of the SVG's by about 1 %, hence the goal of :data:`WIDTH` itself,
    under the 2 % a picture may exceed it."""
    plt = _plt()
    width = WIDTH - 2 * (PAD - plt.rcParams["figure.constrained_layout.w_pad"])
    with plt.rc_context({"font.size": font_pt()}):
        fig = draw(width)
        got = _tight_width(fig)
        for _attempt in range(3):
            if got <= WIDTH * 1.005 or width <= 1.5:
                break
            narrower = max(1.5, width - (got - WIDTH) / slope)
            plt.close(fig)
            fig = draw(narrower)
            before, got = got, _tight_width(fig)
            if got >= before - 0.01:
                break  # no narrower (a heat map's cells at their smallest): same picture
            slope = min(1.0, max(0.25, (before - got) / (width - narrower)))
            width = narrower
        text = _save(fig)
    text = text[text.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return Markup(text)  # noqa: S704 - produced by matplotlib, which escapes its text


def bars(labels: list[str], values: Sequence[float], title: str, xlabel: str) -> Markup:
    def draw(width: float) -> Any:
        fig, ax = _plt().subplots(figsize=(width, 0.5 * len(labels) + 1.4), layout="constrained")
        names = [wrap(label) for label in labels[::-1]]
        bar_ids(ax.barh(names, values[::-1], color="#4c78a8"), "size")
        _numbers(ax.xaxis)
        ax.set_title(wrap(title, _title_chars()))
        ax.set_xlabel(xlabel)
        return fig

    return svg(draw)


def heatmap(names: list[str], matrix: Any) -> Markup:
    shown = [wrap(n) for n in names]

    def draw(width: float) -> Any:
        # no layout engine: cells keep their size and the tight bounding box grows around long
        # names (a constrained layout shrank the cells until their counts ran together)
        side = max(0.45, (width - 1.2) / max(1, len(names)))
        fig, ax = _plt().subplots(figsize=(1.2 + side * len(names), 1.5 + side * len(names)))
        im = ax.imshow(matrix, cmap="Blues")
        # upright or rotated 45°, long names run into each other; at 90° each has its column
        ax.set_xticks(range(len(names)), shown, rotation=90)
        ax.set_yticks(range(len(names)), shown)
        top = max(float(matrix.max()), 1.0)
        for i in range(len(names)):
            for j in range(len(names)):
                dark = float(matrix[i][j]) > 0.6 * top  # white on the darkest blues, to be read
                ax.text(
                    j,
                    i,
                    number(round(float(matrix[i][j]))),
                    ha="center",
                    va="center",
                    color="white" if dark else "black",
                )
        bar = fig.colorbar(im, ax=ax, label=wrap(_("contacts in common"), 12))
        _numbers(bar.ax.yaxis)
        # above the whole figure: over the axes alone, a long title ran into the colour bar
        fig.suptitle(wrap(_("Segment overlaps"), _title_chars()), y=1.02, va="bottom")
        return fig

    return svg(draw)


def profile_chart(q: QualityReport) -> Markup | None:
    """Each segment's mean of each metric, as a percentage of the whole base's mean."""
    cols = [c for c in q.metrics if q.base.get(c) and q.base[c].mean]
    segs = [s for s in q.segments if s.size]
    if not cols or not segs:
        return None

    def draw(width: float) -> Any:
        fig, ax = _plt().subplots(
            figsize=(width, 0.3 * len(cols) * max(1, len(segs)) + 1.2 + 0.3 * len(segs)),
            layout="constrained",
        )
        height = 0.8 / len(segs)
        for k, s in enumerate(segs):
            vals = [100 * (s.stats[c].mean or 0) / (q.base[c].mean or 1) for c in cols]
            drawn = ax.barh(
                [i + k * height for i in range(len(cols))],
                vals,
                height=height,
                label=wrap(s.label, 40),
            )
            bar_ids(drawn, f"profile{k}")
        ax.axvline(100, color="#333", linewidth=1)
        ticks = [i + 0.4 - height / 2 for i in range(len(cols))]
        ax.set_yticks(ticks, [wrap(q.metrics[c], 20) for c in cols])
        ax.invert_yaxis()
        _numbers(ax.xaxis)
        said = _("segment mean, as % of the base's mean\n(100 = like the base)")
        ax.set_xlabel("\n".join(wrap(line, 34) for line in said.split("\n")))
        # under the chart, never over its bars (matplotlib's "best" spot can cover some);
        # one column: two side by side ran wider than a phone
        fig.legend(loc="outside lower center", ncols=1)
        ax.set_title(wrap(_("Segment profiles"), _title_chars()))
        return fig

    return svg(draw)


def kpi_chart(r: KpiReport) -> Markup | None:
    """One bar chart per measure, stacked: side by side, each one's group names ran over
    its left neighbour's bars, and three charts do not fit a phone's width. A title wider
    than its bars is centred over them, beside the names: narrowing the chart, it sticks
    out on the right by half of what the bars lose (:func:`svg`'s ``slope``)."""
    groups = [g for g in r.groups if any(g.rates.get(e) for e in (*EVENTS, "conversion"))]
    if not groups:
        return None
    measures = [e for e in ("open", "click", "conversion") if any(g.rates.get(e) for g in groups)]
    titles = {"open": _("open rate"), "click": _("click rate"), "conversion": _("conversion")}

    def draw(width: float) -> Any:
        fig, axes = _plt().subplots(
            len(measures),
            1,
            figsize=(width, len(measures) * (0.5 * len(groups) + 1.3)),
            squeeze=False,
            layout="constrained",
        )
        for ax, e in zip(axes[:, 0], measures, strict=True):
            shown = [(g, rate) for g in groups if (rate := g.rates.get(e)) is not None]
            vals = [100 * rate.value for _g, rate in shown]
            los = [max(0.0, v - 100 * r.ci[0]) for v, (_g, r) in zip(vals, shown, strict=True)]
            his = [max(0.0, 100 * r.ci[1] - v) for v, (_g, r) in zip(vals, shown, strict=True)]
            drawn = ax.barh(
                [wrap(g.name, 16) for g, _rate in shown][::-1],
                vals[::-1],
                xerr=[los[::-1], his[::-1]],
                color="#4c78a8",
                ecolor="#333",
                capsize=3,
            )
            bar_ids(drawn, e)
            _numbers(ax.xaxis)
            title = _("{measure} (%, with its confidence interval)").format(measure=titles[e])
            ax.set_title(wrap(title, _title_chars()))
        return fig

    return svg(draw, slope=0.5)
