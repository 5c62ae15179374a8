#!/usr/bin/env python3
"""Instructions per request of the load benchmark's HTTP servers, counted by callgrind.

Each server of `loadbench` (bare rmcp with one tool and its guarded twin; the `files`
example's unguarded twin and the `files` binary itself) runs under
`valgrind --tool=callgrind` with instrumentation off, on 127.0.0.1; one keep-alive
connection sends it 50 `tools/call` requests uncounted, then N counted ones (default 300),
each answer checked. Unlike CPU time on a shared machine, the count is the same from run to
run, and callgrind's output names the functions: the guard's work per request, function by
function, is `callgrind_annotate --inclusive=yes FILE` of the files this leaves in
`target/http-instructions/`. Callgrind counts user-space instructions only (not the
kernel's TCP work, which the servers share) and does not model the CPU's SHA extensions.

    cargo build --release -p mcp-guard-examples --bin loadbench --bin files
    python3 benches/http-instructions.py          # needs valgrind (apt-get install valgrind)
"""

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
OUT = os.path.join(ROOT, "target", "http-instructions")
N = int(os.environ.get("N", "300"))
WARM = 50
TIMEOUT = 120

PING = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{}}}'
ECHO = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
        b'"params":{"name":"echo","arguments":{"text":"hello"}}}')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, args, ready_url=None):
    """Starts a server under callgrind; returns (process, MCP URL, output file)."""
    out = os.path.join(OUT, f"callgrind.{name}")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        + args,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if ready_url is None:
        line = proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            sys.exit(f"{name}: no ready line")
        return proc, line[1], out
    url = urllib.parse.urlparse(ready_url)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, ready_url, out
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{name}: not ready in {TIMEOUT} s")


def count(name, args, body, expect, issuer, ready_url=None):
    proc, url, out = start(name, args, ready_url)
    try:
        issuer.stdin.write(url + "\n")
        issuer.stdin.flush()
        token = issuer.stdout.readline().strip()
        u = urllib.parse.urlparse(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
        headers = {"content-type": "application/json",
                   "accept": "application/json, text/event-stream",
                   "authorization": f"Bearer {token}",
                   "mcp-protocol-version": "2025-11-25"}

        def one():
            conn.request("POST", u.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or expect not in data:
                sys.exit(f"{name}: {resp.status} {data[:200]!r}")

        for _ in range(WARM):
            one()
        control = lambda *a: subprocess.run(["callgrind_control", *a, str(proc.pid)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        control("--instr=on")
        for _ in range(N):
            one()
        control("--instr=off")
        control("--dump")
        dumps = sorted(f for f in os.listdir(OUT)
                       if f.startswith(f"callgrind.{name}.") and os.path.getsize(os.path.join(OUT, f)))
        if not dumps:
            sys.exit(f"{name}: no dump")
        with open(os.path.join(OUT, dumps[-1])) as f:
            totals = [int(l.split()[1]) for l in f if l.startswith("totals:")]
        return totals[0] / N
    finally:
        proc.kill()
        proc.wait()


def main():
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed: apt-get install valgrind")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    loadbench = os.path.join(RELEASE, "loadbench")
    files = os.path.join(RELEASE, "files")
    issuer = subprocess.Popen([loadbench, "issuer"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    iss = issuer.stdout.readline().strip()
    port = free_port()
    files_url = f"http://127.0.0.1:{port}/mcp"
    servers = [
        ("bare", [loadbench, "serve", "--mode", "bare"], PING, b"pong", None),
        ("guarded", [loadbench, "serve", "--mode", "guarded", "--issuer", iss], PING, b"pong",
         None),
        ("files-off", [loadbench, "serve", "--mode", "files-off"], ECHO, b"hello", None),
        ("files", [files, "--stateless", "--issuer", iss, "--resource", files_url,
                   "--listen", f"127.0.0.1:{port}"], ECHO, b"hello", files_url),
    ]
    try:
        counts = {name: count(name, args, body, expect, issuer, ready)
                  for name, args, body, expect, ready in servers}
    finally:
        issuer.kill()
    print(f"instructions per request, {N} requests each (2025-11-25 tools/call, token reused)")
    for name, against in [("bare", None), ("guarded", "bare"), ("files-off", None),
                          ("files", "files-off")]:
        line = f"{name:10} {counts[name]:10.0f}"
        if against:
            line += (f"   {counts[name] - counts[against]:+8.0f} vs {against}"
                     f" ({counts[against] / counts[name]:.3f}x)")
        print(line)


if __name__ == "__main__":
    main()
