"""One background thread that sends a study's MLflow requests in order while training goes
on; a failed request is raised by the next one queued or by `settle`, and once the server has
stopped answering what is queued fails at once instead of retrying."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tunelab.tracking.reachability import TrackingOutage, describe_outage


class Sender:
    """Requests queued on one thread, in order; `outage` is set once the server at
    `tracking_uri()` stopped answering."""

    def __init__(self, tracking_uri: Callable[[], str]) -> None:
        self.tracking_uri = tracking_uri
        self.outage: TrackingOutage | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunelab-tracking")
        self._in_flight: list[Future] = []

    def queue(self, work: Callable[[], Any]) -> Future:
        """Queue `work`, after raising any earlier work that failed."""
        done = [f for f in self._in_flight if f.done()]
        self._in_flight = [f for f in self._in_flight if not f.done()]
        for future in done:
            future.result()

        def unless_the_server_is_gone() -> Any:
            if self.outage is not None:
                raise self.outage
            try:
                return work()
            except Exception as error:
                self.outage = self.outage_in(error)
                raise

        future = self._thread.submit(unless_the_server_is_gone)
        self._in_flight.append(future)
        return future

    def outage_in(self, error: BaseException) -> TrackingOutage | None:
        """The outage `error` means (or the one already seen), None if it is another error."""
        if self.outage is not None:
            return self.outage
        description = describe_outage(error, self.tracking_uri())
        return TrackingOutage(description) if description else None

    def settle(self) -> None:
        """Wait until every request queued so far is sent; raise the first that failed."""
        pending, self._in_flight = self._in_flight, []
        for future in pending:
            future.result()

    def abandon(self) -> None:
        """Drop what is queued, without waiting for it."""
        self._thread.shutdown(wait=False, cancel_futures=True)
