"""The options of `segmerge serve`, with their defaults and why they are what they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: a run that takes longer is stuck rather than busy (the demo's run takes seconds);
#: a big list behind a slow rate limit raises it with --max-run-time
MAX_RUN_TIME = 6 * 3600.0
#: enough for the batch in hand to be recorded; systemd's TimeoutStopSec (90 s) is far above
STOP_GRACE = 10.0


@dataclass
class ServeOptions:
    misfire_grace_time: int = 3600
    log_file: Path | None = None
    run_on_start: bool = False
    unsubscribe_port: int | None = None
    unsubscribe_host: str = "127.0.0.1"
    #: run the pipeline in the daemon's own process (tests); default: one child per run
    in_process: bool = False
    #: seconds a run may take before it is stopped (SIGTERM, then SIGKILL), and per campaign
    max_run_time: float = MAX_RUN_TIME
    max_run_times: dict[str, float] = field(default_factory=dict)
    #: seconds between the SIGTERM asking a run to stop and the SIGKILL that makes it
    stop_grace: float = STOP_GRACE

    def max_run_time_of(self, campaign: str) -> float:
        return self.max_run_times.get(campaign, self.max_run_time)
