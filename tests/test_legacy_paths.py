"""Code written against Segmerge 0.1's flat modules keeps working for one release."""

from __future__ import annotations

import importlib
import sys

import pytest

from segmerge.legacy import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_is_the_new_module_itself(old: str) -> None:
    """A monkeypatch or an isinstance through the old name sees the engine's own objects."""
    sys.modules.pop(old, None)  # another test may have imported it: let the finder run again
    with pytest.warns(DeprecationWarning, match=MOVED[old]):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])


@pytest.mark.parametrize(
    ("package", "name", "home"),
    [
        ("segmerge.ledger", "Ledger", "segmerge.ledger.store"),
        ("segmerge.workspace", "Workspace", "segmerge.workspace.config"),
        ("segmerge.render", "TemplateSet", "segmerge.render.templates"),
        ("segmerge.metrics", "compute_metrics", "segmerge.metrics.compute"),
        ("segmerge.report", "segment_rows", "segmerge.segment.rows"),
        ("segmerge.preview", "render_one", "segmerge.preview.one"),
        ("segmerge.serve", "Daemon", "segmerge.serve.daemon"),
    ],
)
def test_a_name_of_a_module_that_became_a_package_is_still_found(
    package: str, name: str, home: str
) -> None:
    with pytest.warns(DeprecationWarning, match=home):
        found = getattr(importlib.import_module(package), name)
    assert found is getattr(importlib.import_module(home), name)


def test_a_misspelt_name_is_still_an_attribute_error() -> None:
    import segmerge.ledger

    with pytest.raises(AttributeError):
        segmerge.ledger.Ledgr  # noqa: B018
