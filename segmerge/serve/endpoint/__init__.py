"""The HTTP endpoint `serve` opens: one-click unsubscribe and tracked clicks and opens."""
