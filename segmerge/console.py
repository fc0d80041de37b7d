"""The CLI's two consoles, set up once for every command module.

``soft_wrap`` keeps messages and paths on whole lines (a path broken across
lines can be neither pasted nor grepped, and CI's paths are long); tables
still fit the terminal's width.
"""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
