"""bench.pipeline.CpuMeter: CPU is attributed to the worker tree and to this process."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.pipeline import CpuMeter

# Waits 1 s (the meter starts meanwhile), spins for 0.4 s of CPU, then stays alive (idle) so the
# meter's second sample still sees it.
_SPIN_THEN_SLEEP = (
    "import time\ntime.sleep(1.0)\nt = time.process_time()\n"
    "while time.process_time() - t < 0.4: pass\ntime.sleep(5)\n"
)


def _wait_for_spin(parent_pid: int, timeout_s: float = 30.0) -> None:
    """Until the child has spent its 0.4 s of CPU (wall time varies with the machine's load)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = psutil.Process(parent_pid).children()
        if children and sum(children[0].cpu_times()[:2]) >= 0.4:
            return
        time.sleep(0.05)
    raise AssertionError("the spinning child did not finish in time")


def test_a_pool_child_of_the_worker_is_counted_as_worker() -> None:
    # An idle parent whose child does the work stands in for the worker and its pool process.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_SPIN_THEN_SLEEP!r}])",
        ],
        start_new_session=True,
    )
    try:
        time.sleep(0.5)  # the child exists before the first sample
        meter = CpuMeter(parent.pid)
        meter.start()
        _wait_for_spin(parent.pid)
        meter.stop()
    finally:
        subprocess.run(["pkill", "-KILL", "-g", str(parent.pid)], check=False)
        parent.wait()
    assert 0.15 <= meter.seconds["worker"] <= 0.6
    # The child's 0.4 s would put bench+sandbox at 0.4 or more if it were misattributed; below
    # that, what this process spends polling psutil grows with the machine's load (0.16 s seen).
    assert meter.seconds["bench+sandbox"] < 0.3


def test_this_process_is_counted_as_bench_and_not_as_worker() -> None:
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        meter = CpuMeter(idle.pid)
        meter.start()
        start = time.process_time()
        while time.process_time() - start < 0.3:
            pass
        meter.stop()
    finally:
        idle.kill()
        idle.wait()
    assert meter.seconds["bench+sandbox"] >= 0.25
    assert meter.seconds["worker"] < 0.1
    total_ms_per_item = sum(meter.seconds.values()) * 1000 / 10
    assert meter.per_item_ms(10).startswith(f"{total_ms_per_item:.1f} ms (worker ")
