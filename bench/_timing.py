"""The timing loop every inference benchmark interpreter shares (standard library only).

``bench/inference.py`` runs MXNet here and torch, ONNX Runtime and OpenVINO in interpreters of
their own; each imports this file from ``bench/`` so that every runtime is timed the same way.
"""
import time


def rate_and_latency(run, batch, single, batch_size, min_time, latency_runs):
    """(images/s over at least ``min_time`` s of ``run(batch)``, median ms of ``run(single)``).

    ``run`` must return only when its result is computed (wait for asynchronous runtimes inside it).
    Two warm-up runs at the batch and three at batch 1 are not timed.
    """
    for _ in range(2):
        run(batch)
    runs, start = 0, time.perf_counter()
    while True:
        run(batch)
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time and runs >= 2:
            break
    throughput = runs * batch_size / elapsed
    for _ in range(3):
        run(single)
    times = []
    for _ in range(latency_runs):
        t = time.perf_counter()
        run(single)
        times.append(time.perf_counter() - t)
    times.sort()
    return throughput, 1000 * times[len(times) // 2]


def cpu_name():
    """The CPU's model name (Linux ``/proc/cpuinfo``), so that every printed figure names its CPU."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()
