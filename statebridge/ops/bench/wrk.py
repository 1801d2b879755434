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

from statebridge.ops.bench.cases import Case
from statebridge.ops.bench.model import Target

MARKER = "BENCHJSON "

DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d," ..
    "\"write\":%d,\"status\":%d,\"timeout\":%d,\"p50\":%d,\"p90\":%d,\"p99\":%d,\"max\":%d," ..
    "\"bytes\":%d}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.bytes))
end
"""

# Any case that is not a flow, from a spec file (write_spec) named by the first script
# argument: its steps ("R METHOD PATH", then "B BODY" and "X" for Session-ID), the live
# sessions ("S ID USER"), users ("U ID PREFERENCES") and products ("P ID"). Placeholders in
# a path or body ({user_id}, {product_id}, {preferences}) are filled in per request.
LOAD = r"""
local steps, sessions, owners, users, preferences, products = {}, {}, {}, {}, {}, {}

local function load(path)
  for line in io.lines(path) do
    local kind, rest = line:sub(1, 1), line:sub(3)
    if kind == "R" then
      local method, target = rest:match("^(%S+) (.+)$")
      steps[#steps + 1] = {method = method, path = target}
    elseif kind == "B" then steps[#steps].body = rest
    elseif kind == "X" then steps[#steps].session = true
    elseif kind == "S" then
      local id, owner = rest:match("^(%S+) (%S+)$")
      sessions[#sessions + 1] = id
      owners[#owners + 1] = owner
    elseif kind == "U" then
      local id, value = rest:match("^(%S+) (.+)$")
      users[#users + 1] = id
      preferences[id] = value
    elseif kind == "P" then products[#products + 1] = rest end
  end
end
"""

# One request, the same every time: wrk builds it once (its fastest way).
STATIC = r"""
init = function(args)
  load(args[1])
  local step = steps[1]
  wrk.method, wrk.path, wrk.body = step.method, step.path, step.body
  if step.body then wrk.headers["Content-Type"] = "application/json"
  elseif step.method == "POST" or step.method == "PUT" then wrk.body = "" end
end
"""

# Request n: step n mod steps; in round n div steps (interleaved across wrk's threads) the
# round-th live session (and its user) or user, and product.
DYNAMIC = r"""
local threads, n, values = 1, 0, {}
thread_index = 0
local created = 0

function setup(thread)
  thread:set("thread_index", created)
  created = created + 1
end

init = function(args)
  load(args[1])
  threads = tonumber(args[2]) or 1
end

local function lookup(name) return values[name] end

local function fill(template)
  if not template:find("{", 1, true) then return template end
  return (template:gsub("{([%w_]+)}", lookup))
end

request = function()
  local step = steps[n % #steps + 1]
  local round = math.floor(n / #steps) * threads + thread_index
  n = n + 1
  local headers, user = {}, nil
  if step.session then
    local i = round % #sessions + 1
    headers["Session-ID"] = sessions[i]
    user = owners[i]
  elseif #users > 0 then
    user = users[round % #users + 1]
  end
  values.user_id = user
  values.preferences = user and preferences[user] or "{}"
  values.product_id = #products > 0 and products[round % #products + 1] or nil
  local body = step.body
  if body then
    body = fill(body)
    headers["Content-Type"] = "application/json"
  elseif step.method == "POST" or step.method == "PUT" then
    body = ""
  end
  return wrk.format(step.method, fill(step.path), headers, body)
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
    """The script for one fixed request, and the one for requests that vary."""
    static = directory / "static.lua"
    static.write_text(LOAD + STATIC + DONE)
    dynamic = directory / "dynamic.lua"
    dynamic.write_text(LOAD + DYNAMIC + DONE)
    return static, dynamic


def is_static(case: Case) -> bool:
    return len(case.steps) == 1 and not case.steps[0].varies


def write_spec(path: Path, case: Case, target: Target, base: str) -> None:
    """The case's steps (paths below `base`) and what fills them in, for the scripts."""
    lines: list[str] = []
    for step in case.steps:
        lines.append(f"R {step.method} {base}{step.path}")
        if step.body is not None:
            lines.append(f"B {step.body}")
        if step.session:
            lines.append("X")
    if case.needs_sessions:
        lines.extend(f"S {session} {user}" for session, user in target.sessions)
    lines.extend(f"U {user} {target.preferences.get(user, '{}')}" for user in target.users)
    lines.extend(f"P {product}" for product in target.products)
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
