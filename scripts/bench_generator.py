"""The generator benchmark (make bench-generator): time to generate, validate and render a level.

For each style and size (12, 200 and 1,000 rooms), several seeds: the six pipeline steps run back
to back on the worker's data path (each step reads the previous step's data through a JSON round
trip, as from its checkpoint), then minimap.png is drawn. Printed: the median wall-clock time of
the steps and the picture (ms), the median CPU time of the same (less disturbed by other work on a
shared machine), the median time the JSON round trips add, and the growth of the CPU time from 200
to 1,000 rooms (n log n would be x6.5, linear x5.0).

    python scripts/bench_generator.py [--styles doom,cave] [--sizes 12,200,1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import STEPS, STYLES, encode_json, run_step
from pipeline.picture import render_png

SIZES = (12, 200, 1000)
RUNS = {12: 9, 200: 7, 1000: 5}


def one_level(style: str, rooms: int, seed: int) -> tuple[float, float, float, int]:
    """(wall s, CPU s, JSON round-trip s, rooms built incl. corridors) for one level."""
    data: object = {"prompt": "a level", "seed": seed, "style": style, "rooms": rooms}
    wall = cpu = io = 0.0
    for name in STEPS:
        started, started_cpu = time.perf_counter(), time.process_time()
        output = run_step(name, data)
        wall += time.perf_counter() - started
        cpu += time.process_time() - started_cpu
        started = time.perf_counter()
        data = json.loads(encode_json(output.data))
        io += time.perf_counter() - started
    started, started_cpu = time.perf_counter(), time.process_time()
    render_png(data["sceneGraph"])
    wall += time.perf_counter() - started
    cpu += time.process_time() - started_cpu
    return wall, cpu, io, data["sceneGraph"]["metrics"]["rooms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default=",".join(STYLES))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--runs", type=int, default=0, help="seeds per size (default: 9, 7 and 5)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    print(
        f"# generator benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print(f"{'style':<8} {'rooms':>5} {'built':>6} {'wall ms':>9} {'cpu ms':>8} {'+json ms':>9}  growth 200->1000")
    for style in args.styles.split(","):
        medians = {}
        for rooms in sizes:
            runs = [one_level(style, rooms, seed) for seed in range(args.runs or RUNS.get(rooms, 5))]
            wall, cpu, io = (statistics.median(run[index] for run in runs) * 1000 for index in range(3))
            built = round(statistics.median(run[3] for run in runs))
            medians[rooms] = cpu
            growth = ""
            if rooms == 1000 and 200 in medians:
                ratio = cpu / medians[200]
                growth = f"x{ratio:.1f} (n log n: x{1000 * math.log(1000) / (200 * math.log(200)):.1f})"
            print(f"{style:<8} {rooms:>5} {built:>6} {wall:>9.1f} {cpu:>8.1f} {io:>9.1f}  {growth}", flush=True)


if __name__ == "__main__":
    main()
