"""Per-contact metrics: RFM, windows, engagement, and the catalog a rule may name."""

from segmerge.legacy import forwarder

__getattr__ = forwarder(__name__, "segmerge.metrics.compute")
