"""The `segmerge` commands' parts: options, consoles, printers and the command groups."""
