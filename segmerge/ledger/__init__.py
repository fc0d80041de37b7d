"""The ledger: the local record of every run and action, its suppressions and its backups."""

from segmerge.legacy import forwarder

__getattr__ = forwarder(__name__, "segmerge.ledger.store")
