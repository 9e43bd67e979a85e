"""Progress lines for the long phases: index builds and query loops.

A build is one CREATE INDEX statement, so its progress comes from another
connection that reads pg_stat_progress_create_index for the building
backend every few seconds (pgvector and libravdb both report their phase
and the tuples done). A query loop reports how far it got when a point
takes longer than the interval. Short phases print nothing extra.
"""

import threading
import time
from typing import Callable, Optional

INTERVAL_S = 10.0

PROGRESS_SQL = """SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
                    FROM pg_stat_progress_create_index WHERE pid = %s"""


def build_line(row: Optional[tuple], elapsed_s: float) -> str:
    """One progress line from a pg_stat_progress_create_index row
    (phase, blocks_done, blocks_total, tuples_done, tuples_total)."""
    if not row:
        return f"  build: {elapsed_s:.0f} s"
    phase, bdone, btotal, tdone, ttotal = row
    parts = [f"  build: {elapsed_s:.0f} s, {phase}"]
    if ttotal:
        parts.append(f"tuples {tdone}/{ttotal} ({100.0 * tdone / ttotal:.0f} %)")
    elif tdone:
        parts.append(f"tuples {tdone}")
    if btotal:
        parts.append(f"blocks {bdone}/{btotal} ({100.0 * bdone / btotal:.0f} %)")
    return ", ".join(parts)


class BuildMonitor:
    """Logs the progress of the CREATE INDEX that backend pid runs, from its
    own connection (connect() returns one), every interval seconds until
    stop(). Failures of the monitor never disturb the build."""

    def __init__(self, connect: Callable, pid: int, log: Callable, interval_s: float = INTERVAL_S):
        self.connect, self.pid, self.log, self.interval_s = connect, pid, log, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        return False

    def _run(self):
        conn = None
        try:
            while not self._stop.wait(self.interval_s):
                if conn is None:
                    conn = self.connect()
                row = conn.execute(PROGRESS_SQL, (self.pid,)).fetchone()
                if not self._stop.is_set():
                    self.log(build_line(row, time.perf_counter() - self._t0))
        except Exception as e:  # noqa: BLE001 - progress is best effort
            self.log(f"  (build progress unavailable: {type(e).__name__})")
        finally:
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass


class LoopProgress:
    """Call tick(done) after each query; logs 'done/total' when interval
    seconds passed since the last line."""

    def __init__(self, total: int, log: Callable, what: str = "queries", interval_s: Optional[float] = None,
                 clock: Callable = time.perf_counter):
        self.total, self.log, self.what, self.clock = total, log, what, clock
        self.interval_s = INTERVAL_S if interval_s is None else interval_s
        self.t0 = self.last = clock()

    def tick(self, done: int) -> None:
        now = self.clock()
        if now - self.last >= self.interval_s and done < self.total:
            self.last = now
            rate = done / (now - self.t0) if now > self.t0 else 0.0
            self.log(f"  {self.what}: {done}/{self.total} in {now - self.t0:.0f} s ({rate:.1f}/s)")
