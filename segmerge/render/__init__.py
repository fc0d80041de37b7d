"""Letters: sandboxed Jinja templates, their checks, limits and the pool that renders them."""

from segmerge.legacy import forwarder

__getattr__ = forwarder(__name__, "segmerge.render.templates")
