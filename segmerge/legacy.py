"""The module paths of Segmerge 0.1 (one flat `segmerge/`), kept importable for one release.

Plugins written against 0.1 imported `segmerge.connector`, `segmerge.schema`,
`segmerge.http`…; those names now live in packages (`segmerge.ports` for plugins).
Importing an old name gives the new module itself (so a monkeypatch or an
``isinstance`` sees the same objects) and a :class:`DeprecationWarning` naming the
new path. The engine itself never imports an old name (a test checks it).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["MOVED", "forwarder", "install"]

#: Old dotted name -> the module that holds it now.
MOVED: dict[str, str] = {
    "segmerge.addresses": "segmerge.ports.addresses",
    "segmerge.as_of": "segmerge.cli.as_of",
    "segmerge.backup": "segmerge.ledger.backup",
    "segmerge.campaign": "segmerge.run.campaign",
    "segmerge.catalog": "segmerge.metrics.catalog",
    "segmerge.cli_admin": "segmerge.cli.admin",
    "segmerge.cli_doctor": "segmerge.cli.doctor",
    "segmerge.cli_errors": "segmerge.cli.errors",
    "segmerge.cli_options": "segmerge.cli.options",
    "segmerge.cli_preview": "segmerge.cli.preview",
    "segmerge.cli_report": "segmerge.cli.report",
    "segmerge.cli_run_output": "segmerge.cli.run_output",
    "segmerge.cli_schedule": "segmerge.cli.schedule",
    "segmerge.cli_sources": "segmerge.cli.sources",
    "segmerge.config_positions": "segmerge.workspace.positions",
    "segmerge.connector": "segmerge.ports.connector",
    "segmerge.consent": "segmerge.mail.consent",
    "segmerge.console": "segmerge.cli.console",
    "segmerge.drafts": "segmerge.render.drafts",
    "segmerge.engagement": "segmerge.metrics.engagement",
    "segmerge.experiment_check": "segmerge.run.experiment_check",
    "segmerge.experiment_plan": "segmerge.run.groups",
    "segmerge.filters": "segmerge.render.filters",
    "segmerge.frontmatter": "segmerge.render.frontmatter",
    "segmerge.history_view": "segmerge.cli.history",
    "segmerge.http": "segmerge.ports.http",
    "segmerge.http_answers": "segmerge.ports.http_answers",
    "segmerge.http_wait": "segmerge.ports.http_wait",
    "segmerge.kpi": "segmerge.report.kpi",
    "segmerge.kpi_config": "segmerge.workspace.kpi",
    "segmerge.ledger_suppression": "segmerge.ledger.suppression",
    "segmerge.ledger_tracking": "segmerge.ledger.tracking",
    "segmerge.locks": "segmerge.ports.locks",
    "segmerge.message": "segmerge.mail.message",
    "segmerge.movements": "segmerge.report.movements",
    "segmerge.order_links": "segmerge.segment.order_links",
    "segmerge.order_status": "segmerge.segment.order_status",
    "segmerge.pipeline": "segmerge.run.pipeline",
    "segmerge.plan": "segmerge.run.plan",
    "segmerge.pressure": "segmerge.run.pressure",
    "segmerge.pressure_config": "segmerge.workspace.pressure",
    "segmerge.preview_app": "segmerge.preview.app",
    "segmerge.preview_host": "segmerge.preview.host",
    "segmerge.preview_lang": "segmerge.preview.lang",
    "segmerge.preview_pages": "segmerge.preview.pages",
    "segmerge.push_batches": "segmerge.run.push",
    "segmerge.quality": "segmerge.report.quality",
    "segmerge.quality_coverage": "segmerge.report.coverage",
    "segmerge.rate_headers": "segmerge.ports.rate_headers",
    "segmerge.rate_limit": "segmerge.ports.rate_limit",
    "segmerge.render_check": "segmerge.render.check",
    "segmerge.render_env": "segmerge.render.env",
    "segmerge.render_errors": "segmerge.render.errors",
    "segmerge.render_limits": "segmerge.render.limits",
    "segmerge.render_pool": "segmerge.render.pool",
    "segmerge.render_sandbox": "segmerge.render.sandbox",
    "segmerge.report_html": "segmerge.report.html",
    "segmerge.restore": "segmerge.ledger.restore",
    "segmerge.rfm": "segmerge.metrics.rfm",
    "segmerge.schedule": "segmerge.serve.cron",
    "segmerge.schema": "segmerge.ports.schema",
    "segmerge.secrets": "segmerge.workspace.secrets",
    "segmerge.segmentation": "segmerge.segment.segmentation",
    "segmerge.senders": "segmerge.render.senders",
    "segmerge.serve_lock": "segmerge.serve.lock",
    "segmerge.serve_log": "segmerge.serve.log",
    "segmerge.serve_options": "segmerge.serve.options",
    "segmerge.serve_procs": "segmerge.serve.procs",
    "segmerge.serve_run": "segmerge.serve.child",
    "segmerge.snapshot": "segmerge.segment.cache",
    "segmerge.source_check": "segmerge.segment.source_check",
    "segmerge.source_ref": "segmerge.workspace.sources",
    "segmerge.source_rules": "segmerge.segment.order_rules",
    "segmerge.state_check": "segmerge.workspace.state",
    "segmerge.stats": "segmerge.report.stats",
    "segmerge.storage": "segmerge.workspace.storage",
    "segmerge.stream_progress": "segmerge.segment.progress",
    "segmerge.suppression": "segmerge.mail.suppression",
    "segmerge.testsend": "segmerge.run.testsend",
    "segmerge.textfile": "segmerge.workspace.textfile",
    "segmerge.textpart": "segmerge.render.textpart",
    "segmerge.tokens": "segmerge.mail.tokens",
    "segmerge.tracking_check": "segmerge.serve.endpoint.reachability",
    "segmerge.tracking_config": "segmerge.workspace.tracking",
    "segmerge.tracking_http": "segmerge.serve.endpoint.tracking_http",
    "segmerge.tracking_kpi": "segmerge.report.tracking_events",
    "segmerge.tracking_links": "segmerge.mail.tracking_links",
    "segmerge.tracking_record": "segmerge.serve.endpoint.tracking_record",
    "segmerge.tracking_tokens": "segmerge.mail.tracking_tokens",
    "segmerge.unsubscribe_http": "segmerge.serve.endpoint.http",
    "segmerge.unsubscribe_notify": "segmerge.serve.endpoint.notify",
    "segmerge.unsubscribe_pages": "segmerge.serve.endpoint.pages",
    "segmerge.unsubscribe_queue": "segmerge.mail.unsubscribe_queue",
    "segmerge.unsubscribe_record": "segmerge.serve.endpoint.record",
    "segmerge.unsubscribe_server": "segmerge.serve.endpoint.server",
    "segmerge.validate_campaigns": "segmerge.cli.validate",
    "segmerge.validate_ids": "segmerge.cli.contact_ids",
    "segmerge.validate_letters": "segmerge.run.letters_check",
    "segmerge.validate_run": "segmerge.run.checks",
    "segmerge.variants": "segmerge.render.variants",
    "segmerge.verdicts": "segmerge.report.verdicts",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and loads the new module in its place in ``sys.modules``."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} moved to {new}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        # importlib reads sys.modules back after exec_module: the old name becomes the
        # new module itself, not a copy.
        sys.modules[module.__name__] = importlib.import_module(new)


_FINDER = _MovedModules()


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (``segmerge/__init__`` calls it)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)


def forwarder(package: str, moved_to: str) -> Callable[[str], Any]:
    """The ``__getattr__`` of a package that took the name of a 0.1 module
    (`segmerge.ledger` was one module, now a package): `segmerge.ledger.Ledger` still
    finds the name in `moved_to`, with a DeprecationWarning, for one release."""
    here = Path(sys.modules[package].__file__ or ".").parent

    def __getattr__(name: str) -> Any:
        if name.startswith("_") or (here / f"{name}.py").exists() or (here / name).is_dir():
            raise AttributeError(name)
        value = getattr(importlib.import_module(moved_to), name)
        warnings.warn(
            f"{package}.{name} moved to {moved_to}.{name}", DeprecationWarning, stacklevel=2
        )
        return value

    return __getattr__
