"""Wall time and peak memory of one phase (training or imputation) of a method."""

from __future__ import annotations

import resource
import threading
import time
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _rss_mb() -> float | None:
    """Current resident set size of this process in MiB (Linux), None where unknown."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


class Meter:
    """Context manager: ``seconds``, ``mem_mb`` (peak RSS during the phase minus RSS at its start,
    sampled every 20 ms; the process peak from ``getrusage`` where /proc is absent) and ``gpu_mb``
    (peak CUDA memory allocated by torch during the phase, NaN off CUDA).

    Example
    -------
    >>> with Meter() as m:
    ...     _ = sum(range(1000))
    >>> m.seconds >= 0
    True
    """

    def __init__(self, device=None, interval: float = 0.02):
        self.device = str(device) if device is not None else "cpu"
        self.interval = interval
        self.seconds = float("nan")
        self.mem_mb = float("nan")
        self.gpu_mb = float("nan")
        self._peak: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = _rss_mb()
            if now is not None and (self._peak is None or now > self._peak):
                self._peak = now

    def __enter__(self) -> Meter:
        self._cuda = self.device.startswith("cuda")
        if self._cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._gpu0 = torch.cuda.memory_allocated()
        self._start_rss = _rss_mb()
        self._peak = self._start_rss
        if self._start_rss is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self._cuda:
            import torch

            torch.cuda.synchronize()
            self.gpu_mb = (torch.cuda.max_memory_allocated() - self._gpu0) / 2**20
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            end = _rss_mb()
            peak = max(p for p in (self._peak, end) if p is not None)
            self.mem_mb = max(peak - self._start_rss, 0.0)
        else:
            self.mem_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def process_peak_mb() -> float:
    """Peak RSS of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
