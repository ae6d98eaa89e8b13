"""Background jobs that must run once in the whole cluster (order reminders, retention), as one duty under the
``schedulers`` lease: started in the process that holds it, stopped when it is lost or handed over."""

from __future__ import annotations

from typing import Protocol, Sequence

from api.cluster.leases import Lease


class Job(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ClusterJobs:
    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = tuple(jobs)
        self.running = False

    @property
    def ready(self) -> bool:
        return self.running

    async def start(self, lease: Lease) -> None:
        for job in self.jobs:
            await job.start()
        self.running = True

    async def stop(self, *, handover: bool) -> None:
        self.running = False
        for job in reversed(self.jobs):
            await job.stop()
