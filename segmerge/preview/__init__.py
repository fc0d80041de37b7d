"""`segmerge preview` and `segmerge render`: every letter as it will be sent."""

from segmerge.legacy import forwarder

__getattr__ = forwarder(__name__, "segmerge.preview.one")
