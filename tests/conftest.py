"""The suite runs the command line in English whatever the workspace's locale.

Its assertions quote English messages; French output is tested on purpose in
tests/test_language.py (which sets SEGMERGE_LANG itself). Subprocesses inherit it.
"""

import os

os.environ["SEGMERGE_LANG"] = "en"
