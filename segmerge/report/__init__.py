"""What a segmentation and a campaign did: quality, movements, KPIs and their verdicts."""

from segmerge.legacy import forwarder

__getattr__ = forwarder(__name__, "segmerge.segment.rows")
