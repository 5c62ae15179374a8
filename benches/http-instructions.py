#!/usr/bin/env python3
"""Instructions per request of the load benchmark's HTTP servers, counted by callgrind.

Each server of `loadbench` (bare rmcp with one tool and its guarded twin; the `files`
example's unguarded twin and the `files` binary itself) runs under
`valgrind --tool=callgrind` with instrumentation off, on 127.0.0.1; one keep-alive
connection sends it 50 `tools/call` requests uncounted, then N counted ones (default 300),
each answer checked, with one token throughout or (`files-decode-new`: the unguarded twin
doing one bare `jsonwebtoken::decode` per request; `files-new`: the example;
`files-new-full`: the example with a 16-entry verified-token cache, full from the start, so
that a new token is verified and only remembered, never cached) a new token on every
request. Unlike CPU time on a shared machine, the count is the same from run to
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


def tokens(issuer, audience, n):
    """n tokens for `audience`, each new."""
    issuer.stdin.write((audience + "\n") * n)
    issuer.stdin.flush()
    return [issuer.stdout.readline().strip() for _ in range(n)]


def count(name, args, body, expect, issuer, ready_url=None, new=False, audience=None):
    proc, url, out = start(name, args, ready_url)
    try:
        minted = iter(tokens(issuer, audience or url, WARM + N if new else 1))
        token = next(minted)
        u = urllib.parse.urlparse(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
        headers = {"content-type": "application/json",
                   "accept": "application/json, text/event-stream",
                   "authorization": f"Bearer {token}",
                   "mcp-protocol-version": "2025-11-25"}

        def one():
            if new:
                headers["authorization"] = f"Bearer {next(minted, token)}"
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
    jwks_uri = issuer.stdout.readline().strip()
    port = free_port()
    files_url = f"http://127.0.0.1:{port}/mcp"
    files_args = [files, "--stateless", "--issuer", iss, "--resource", files_url,
                  "--listen", f"127.0.0.1:{port}"]
    servers = [
        ("bare", [loadbench, "serve", "--mode", "bare"], PING, b"pong", {}),
        ("guarded", [loadbench, "serve", "--mode", "guarded", "--issuer", iss], PING, b"pong",
         {}),
        ("files-off", [loadbench, "serve", "--mode", "files-off"], ECHO, b"hello", {}),
        ("files", files_args, ECHO, b"hello", {"ready_url": files_url}),
        # Every token new: the unguarded twin with one bare decode per request, and the
        # example (its verified-token cache filling, not full: N < 10,000).
        ("files-decode-new", [loadbench, "serve", "--mode", "files-decode", "--issuer", iss,
                              "--audience", files_url, "--jwks-uri", jwks_uri], ECHO, b"hello",
         {"new": True, "audience": files_url}),
        ("files-new", files_args, ECHO, b"hello", {"ready_url": files_url, "new": True}),
        # The same with the cache full from the first request on (16 entries, one per
        # shard): a new token is verified and only its fingerprint remembered, the steady
        # state of a full cache.
        ("files-new-full", files_args + ["--token-cache-capacity", "16"], ECHO, b"hello",
         {"ready_url": files_url, "new": True}),
    ]
    try:
        counts = {name: count(name, args, body, expect, issuer, **kw)
                  for name, args, body, expect, kw in servers}
    finally:
        issuer.kill()
    print(f"instructions per request, {N} requests each (2025-11-25 tools/call; the token "
          "reused, or new on every request for the `-new` servers)")
    for name, against in [("bare", None), ("guarded", "bare"), ("files-off", None),
                          ("files", "files-off"), ("files-decode-new", "files-off"),
                          ("files-new", "files-decode-new"),
                          ("files-new-full", "files-decode-new")]:
        line = f"{name:10} {counts[name]:10.0f}"
        if against:
            line += (f"   {counts[name] - counts[against]:+8.0f} vs {against}"
                     f" ({counts[against] / counts[name]:.3f}x)")
        print(line)


if __name__ == "__main__":
    main()
