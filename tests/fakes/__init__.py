"""Stateful fake vendor servers on 127.0.0.1, validated against the vendors' OpenAPI specs."""
