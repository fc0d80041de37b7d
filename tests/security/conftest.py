"""tests/security imports the shared test helpers (workspaces, fakes) from tests/."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
