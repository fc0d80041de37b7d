"""The workspace: `segmerge.toml`, its settings, and the precious state it keeps."""

from segmerge.legacy import forwarder

__getattr__ = forwarder(__name__, "segmerge.workspace.config")
