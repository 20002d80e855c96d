"""A stand-in ``nvidia-smi`` for tests: :func:`install` writes an executable ``nvidia-smi``
into a folder (put it first on the PATH) that lists the GPUs of a JSON file beside it, and
answers the calls the project makes the way the real one does:

    nvidia-smi -L
    nvidia-smi --query-gpu=index,name,memory.total,... --format=csv[,noheader][,nounits]
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 200
    nvidia-smi -i 1 --query-gpu=...

The GPU list is ``<folder>/nvidia-smi.json`` (``$NVIDIA_SMI_STANDIN`` names another file):
a list of objects with any of the fields below (``A100`` and ``T4`` are ready-made ones; a
field set to null is one the driver does not know, as old drivers lack ``compute_cap``).
With no GPU it says ``No devices were found`` (exit status 6), as the real one does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

A100 = {
    "name": "NVIDIA A100-SXM4-80GB",
    "memory.total": 81920,
    "memory.used": 0,
    "driver_version": "550.54.15",
    "compute_cap": "8.0",
    "utilization.gpu": 0,
}
T4 = {
    "name": "Tesla T4",
    "memory.total": 15360,
    "memory.used": 0,
    "driver_version": "535.104.05",
    "compute_cap": "7.5",
    "utilization.gpu": 0,
}

SCRIPT = '''#!{python}
"""Stand-in nvidia-smi (tests/gpu/standin.py)."""
import json, os, sys, time

UNITS = {{"memory.total": "MiB", "memory.used": "MiB", "memory.free": "MiB",
          "utilization.gpu": "%", "utilization.memory": "%", "power.draw": "W",
          "temperature.gpu": ""}}
DEFAULTS = {{"memory.total": 16384, "memory.used": 0, "driver_version": "550.54.15",
             "compute_cap": "8.0", "utilization.gpu": 0, "utilization.memory": 0,
             "temperature.gpu": 40, "power.draw": 60.0, "pstate": "P0"}}


def gpus():
    path = os.environ.get("NVIDIA_SMI_STANDIN") or __file__ + ".json"
    with open(path) as f:
        listed = json.load(f)
    out = []
    for i, g in enumerate(listed):
        g = {{**DEFAULTS, **g}}
        g.setdefault("index", i)
        g.setdefault("uuid", "GPU-%08x-0000-4000-8000-%012x" % (i, i))
        g.setdefault("pci.bus_id", "00000000:%02X:00.0" % (i + 1))
        g["memory.free"] = g["memory.total"] - g["memory.used"]
        out.append({{k: v for k, v in g.items() if v is not None}})  # None: a field this
        # driver does not know (old drivers lack compute_cap)
    return out


def main(argv):
    listed = gpus()
    args = dict(a.split("=", 1) if "=" in a else (a, "") for a in argv if a.startswith("--"))
    select = argv[argv.index("-i") + 1] if "-i" in argv else None
    if select is not None:
        keep = set(select.split(","))
        listed = [g for g in listed if str(g["index"]) in keep or g["uuid"] in keep]
    if not listed:
        print("No devices were found")
        return 6
    if "-L" in argv:
        for g in listed:
            print("GPU %d: %s (UUID: %s)" % (g["index"], g["name"], g["uuid"]))
        return 0
    if "--query-gpu" not in args:
        print("stand-in nvidia-smi: only -L and --query-gpu are answered", file=sys.stderr)
        return 2
    fields = [f.strip() for f in args["--query-gpu"].split(",") if f.strip()]
    for f in fields:
        if f not in listed[0]:
            print('Field "%s" is not a valid field to query.' % f)
            print()
            print("See 'nvidia-smi --help-query-gpu' for more information.")
            return 2
    fmt = set(args.get("--format", "").split(","))
    if "csv" not in fmt:
        print("stand-in nvidia-smi: give --format=csv", file=sys.stderr)
        return 2

    def value(g, f):
        v = str(g[f])
        unit = UNITS.get(f, "")
        return v if "nounits" in fmt or not unit else "%s %s" % (v, unit)

    def table():
        if "noheader" not in fmt:
            print(", ".join(f + (" [%s]" % UNITS[f] if UNITS.get(f) and "nounits" not in fmt
                                 else "") for f in fields))
        for g in listed:
            print(", ".join(value(g, f) for f in fields))
        sys.stdout.flush()

    if "-lms" in argv or "-l" in argv:
        flag = "-lms" if "-lms" in argv else "-l"
        pause = float(argv[argv.index(flag) + 1]) / (1000 if flag == "-lms" else 1)
        while True:
            table()
            time.sleep(pause)
    table()
    return 0


sys.exit(main(sys.argv[1:]))
'''


def install(bin_dir: Path, gpus: list[dict]) -> Path:
    """Write the stand-in ``nvidia-smi`` listing ``gpus`` into ``bin_dir``; its path."""
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "nvidia-smi"
    exe.write_text(SCRIPT.format(python=sys.executable))
    exe.chmod(0o755)
    set_gpus(bin_dir, gpus)
    return exe


def set_gpus(bin_dir: Path, gpus: list[dict]) -> None:
    """Change the GPUs the stand-in in ``bin_dir`` lists."""
    (Path(bin_dir) / "nvidia-smi.json").write_text(json.dumps(gpus))
