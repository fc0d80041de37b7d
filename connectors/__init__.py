"""Built-in connectors: one module per platform, found through the entry-point registry."""
