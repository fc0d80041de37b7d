"""Benchmark: letters rendered per second by Segmerge vs a bare precompiled Jinja loop.

Usage: .venv/bin/python benchmarks/render.py [--messages 20000] [--workers N]

Both render the same `templates/profils-vpc/fonceurs.html.j2` letter (subject +
HTML + its `.txt.j2` text part) for the same synthetic contacts:

- ours: ``TemplateSet.render_many`` (sandboxed, autoescaped, strict, null values
  made undefined, per-contact unsubscribe link), on every core, pool start-up
  included;
- bare: a plain ``jinja2.Environment`` with the same sources (front matter
  removed) and the same filters, ``template.render(**ctx)`` in a loop, one core.

It prints messages/s for both, the cores used, and ours / (bare x cores):
the target is >= 0.8, i.e. the safety costs less than 20 % and the cores are used.
For honesty it also prints the bare loop given ours' one speed-up that has
nothing to do with safety (flattened template globals, see
``segmerge.render.env.FastTemplate``), so the sandbox's own cost stays visible.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segmerge.render import frontmatter  # noqa: E402
from segmerge.render.filters import make_filters  # noqa: E402
from segmerge.render.pool import cores  # noqa: E402
from segmerge.render.templates import RenderContext, Rendered, TemplateSet  # noqa: E402

FOLDER = ROOT / "templates" / "profils-vpc"
SEGMENT = "fonceurs"
PARIS = ZoneInfo("Europe/Paris")
FIRST = ["camille", "Zoé", "jean-pierre", "Françoise", "Hélène", "Marc", "Inès", "Loïc", "Léa"]
LAST = ["Martin", "DUPONT", "Lefèvre", "de la Tour", "Nguyen", "Bernard", "Rousseau"]


def contacts(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(42)
    out = []
    for i in range(n):
        orders = rnd.randint(3, 40)
        revenue = round(rnd.uniform(250, 6000), 2)
        out.append(
            {
                "contact_id": f"{i:06d}",
                "email": f"client{i}@example.fr",
                "first_name": rnd.choice(FIRST) if i % 10 else None,  # some nulls, as in real bases
                "last_name": rnd.choice(LAST),
                "civilite": rnd.choice(["M.", "Mme"]),
                "ville": rnd.choice(["Lyon", "Lille", "Nantes", "Brest"]),
                "age": rnd.randint(18, 90),
                "orders_count": orders,
                "revenue": revenue,
                "avg_basket": revenue / orders,
                "last_order_at": pd.Timestamp("2026-02-01", tz="UTC")
                + pd.Timedelta(minutes=rnd.randint(0, 40_000)),
                "days_since_last_order": rnd.randint(0, 60),
                "tags": [],
            }
        )
    return out


def bare_templates(
    flatten: bool = False,
) -> tuple[jinja2.Template, jinja2.Template, jinja2.Template]:
    """The same sources, front matter removed, in a plain Environment with the same filters.

    ``flatten``: give the bare loop the one speed-up of ours that is not about
    safety (each template's globals as a dict rather than Jinja's ChainMap), to
    show what the sandbox, the escaping and the strict values alone cost.
    """
    sources: dict[str, str] = {}
    for folder in (FOLDER.parent / "_shared", FOLDER):
        for path in folder.glob("*.j2"):
            sources[path.name] = frontmatter.split(frontmatter.read_text(path), path).body
    env = jinja2.Environment(loader=jinja2.DictLoader(sources))
    env.filters.update(make_filters("fr_FR", PARIS, "EUR"))
    templates = [env.get_template(name) for name in sources]
    html_path = FOLDER / f"{SEGMENT}.html.j2"
    subject = frontmatter.split(frontmatter.read_text(html_path), html_path).fields["subject"]
    subject_template = env.from_string(subject.value)
    if flatten:
        for template in [*templates, subject_template]:
            template.globals = dict(template.globals)
    return (
        subject_template,
        env.get_template(html_path.name),
        env.get_template(f"{SEGMENT}.txt.j2"),
    )


def cpu() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_bare(
    people: list[dict[str, Any]], ctx: RenderContext, flatten: bool = False
) -> tuple[float, float]:
    """(messages per second of wall time, messages per CPU second)."""
    subject, html, text = bare_templates(flatten)
    segment = {"name": SEGMENT, "label": "Les fonceurs"}
    t0, c0 = time.perf_counter(), cpu()
    for c in people:
        v = {
            "contact": c,
            "segment": segment,
            "campaign": ctx.campaign,
            "today": ctx.today,
            "unsubscribe_url": f"https://boutique-dimanche.fr/d?t={c['contact_id']}",
        }
        subject.render(**v)
        html.render(**v)
        text.render(**v)
    return len(people) / (time.perf_counter() - t0), len(people) / (cpu() - c0)


def _bare_share(job: tuple[list[dict[str, Any]], RenderContext]) -> float:
    return run_bare(*job)[0]


def run_bare_everywhere(people: list[dict[str, Any]], ctx: RenderContext, n: int) -> float:
    """The bare loop in n processes at once: what this machine's cores give plain Jinja."""
    shares = [(people[i::n], ctx) for i in range(n)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(n) as pool:
        pool.map(_bare_share, shares)
    return len(people) / (time.perf_counter() - t0)


def run_ours(
    people: list[dict[str, Any]], ctx: RenderContext, workers: int | None
) -> tuple[float, float]:
    ts = TemplateSet.load(
        FOLDER, [(SEGMENT, "Les fonceurs")], tz=PARIS, known_columns=set(people[0])
    )
    items = [(SEGMENT, c, f"https://boutique-dimanche.fr/d?t={c['contact_id']}") for c in people]
    t0, c0 = time.perf_counter(), cpu()
    results = ts.render_many(items, ctx, workers=workers)
    wall, spent = time.perf_counter() - t0, cpu() - c0
    failed = [r for r in results if not isinstance(r, Rendered)]
    assert not failed, failed[0]
    return len(people) / wall, len(people) / spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=None, help="default: every core")
    args = ap.parse_args()
    people = contacts(args.messages)
    ctx = RenderContext(
        {"name": "profils", "id": "profils"}, date(2026, 3, 3), "https://boutique-dimanche.fr/d"
    )
    n_cores = args.workers or cores()
    run_bare(people[:500], ctx)  # warm-up: babel's locale data, Jinja's caches
    bare, bare_cpu = run_bare(people, ctx)
    ours, ours_cpu = run_ours(people, ctx, args.workers)
    everywhere = run_bare_everywhere(people, ctx, n_cores)
    flat, _ = run_bare(people, ctx, flatten=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"messages: {args.messages:,} (subject + HTML + text of {SEGMENT}.html.j2)")
    print(f"cores: {n_cores} (load average before the run: {load:.2f})")
    print(f"bare precompiled Jinja loop, 1 core:  {bare:8,.0f} messages/s  {bare_cpu:8,.0f} /CPU-s")
    print(
        f"segmerge render_many, {n_cores} core(s):     {ours:8,.0f} messages/s  "
        f"{ours_cpu:8,.0f} /CPU-s"
    )
    print(
        f"ratio ours / (bare x {n_cores}), wall clock: {ours / (bare * n_cores):5.2f}  (target >= 0.8)"
    )
    print(
        f"ratio per CPU second (ours / bare):    {ours_cpu / bare_cpu:5.2f}  "
        "(the cost of the safety, whatever else the machine runs)"
    )
    print(
        f"for reference, the bare loop in {n_cores} processes: {everywhere:8,.0f} messages/s "
        f"= {everywhere / bare:.2f} x one core; ours / that: {ours / everywhere:.2f}"
    )
    print(
        f"and the bare loop with flattened globals, 1 core: {flat:8,.0f} messages/s; "
        f"ours per CPU second / that: {ours_cpu / flat:.2f} (the sandbox's own cost)"
    )


if __name__ == "__main__":
    main()
