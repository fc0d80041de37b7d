"""Segmerge: segment-aware mail merge for CRM and e-mailing platforms (the vendor-free engine)."""

__version__ = "0.1.0"

from segmerge import legacy as _legacy

_legacy.install()
