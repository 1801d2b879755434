"""Driving wrk, the C load generator, with a Lua script that reports what we need as JSON.

wrk keeps its own thread per core and an event loop per thread, so with one thread it
drives a single-process server to saturation with room to spare; the Python fallback
(loadgen.py) cannot promise that.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MARKER = "BENCHJSON "

DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d," ..
    "\"write\":%d,\"status\":%d,\"timeout\":%d,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"max\":%d}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

# The stateful mix: requests alternate POST /cart/add and GET /cart, each with one of the
# live sessions (round robin) read from the file named by the first script argument.
MIX = r"""
local sessions, products, base = {}, {}, ""
init = function(args)
  base = args[2] or ""
  for line in io.lines(args[1]) do
    local kind, value = line:match("^(%a) (.+)$")
    if kind == "S" then sessions[#sessions + 1] = value
    elseif kind == "P" then products[#products + 1] = value end
  end
end
local n = 0
request = function()
  n = n + 1
  local i = math.floor(n / 2)
  local session = sessions[i % #sessions + 1]
  if n % 2 == 1 then
    local product = products[i % #products + 1]
    return wrk.format("POST", base .. "/cart/add",
      {["Content-Type"] = "application/json", ["Session-ID"] = session},
      '{"productId":"' .. product .. '","quantity":1}')
  end
  return wrk.format("GET", base .. "/cart", {["Session-ID"] = session})
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def version() -> str:
    path = wrk_path()
    if path is None:
        return "none"
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    words = (done.stdout or done.stderr).split()
    return " ".join(words[:2]) if words else "wrk"


def write_scripts(directory: Path) -> tuple[Path, Path]:
    plain = directory / "report.lua"
    plain.write_text(DONE)
    mix = directory / "mix.lua"
    mix.write_text(MIX + DONE)
    return plain, mix


def write_sessions(path: Path, sessions: list[str], products: list[str]) -> None:
    lines = [f"S {session}" for session in sessions] + [f"P {product}" for product in products]
    path.write_text("\n".join(lines) + "\n")


def origin_and_path(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/", parts.path.rstrip("/")


def run(
    url: str,
    script: Path,
    script_args: list[str],
    seconds: int,
    connections: int,
    threads: int,
    timeout: float = 5.0,
) -> dict[str, Any]:
    """One wrk run; the numbers its done() printed (latencies in microseconds)."""
    path = wrk_path()
    if path is None:
        raise RuntimeError("wrk is not installed")
    command = [
        path,
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, seconds)}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(script),
        url,
    ]
    if script_args:
        command += ["--", *script_args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            data: dict[str, Any] = json.loads(line[len(MARKER) :])
            return data
    raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout)[-500:]}")
