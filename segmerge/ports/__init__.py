"""The plugin API: everything a connector imports."""
