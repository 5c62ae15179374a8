"""Smoke test of the benchmark's peer MCP servers (benches/peers/*/run.sh).

Run from anywhere with the peers' venv python:

    target/peers/venv/bin/python benches/peers/smoke.py [python] [node-v1] [node-v2]

It serves a JWKS and authorization server metadata on an ephemeral loopback port,
starts each peer with the environment contract (PEER_PORT, PEER_ISSUER,
PEER_JWKS_URI, PEER_AUDIENCE), waits for its ready line, sends the benchmark's
request with good and bad ES256 tokens, prints one line per check and exits
non-zero if any check fails.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ROOT = Path(__file__).resolve().parents[2]
PEERS = ["python", "node-v1", "node-v2"]
READY_TIMEOUT = 30.0
REQUEST_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
KID = "peer-smoke-key"
BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'

failures = 0


def check(peer: str, name: str, ok: bool, detail: str = "") -> bool:
    global failures
    if not ok:
        failures += 1
    line = f"{'ok  ' if ok else 'FAIL'} {peer}: {name}"
    print(line + (f" ({detail})" if detail else ""), flush=True)
    return ok


class AuthServer:
    """JWKS and RFC 8414 metadata on 127.0.0.1, from a thread."""

    def __init__(self, public_jwk: dict) -> None:
        jwks = json.dumps({"keys": [public_jwk]}).encode()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/jwks":
                    outer.jwks_fetches += 1
                    body = jwks
                elif self.path == "/.well-known/oauth-authorization-server":
                    body = json.dumps(
                        {
                            "issuer": outer.issuer,
                            "jwks_uri": outer.jwks_uri,
                            "token_endpoint": outer.issuer + "/token",
                            "response_types_supported": ["code"],
                        }
                    ).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.jwks_fetches = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        port = self.httpd.server_address[1]
        self.issuer = f"http://127.0.0.1:{port}"
        self.jwks_uri = f"{self.issuer}/jwks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(key, *, iss: str, aud: str, scope: str = "files:read", exp_in: int = 3600) -> str:
    now = int(time.time())
    claims = {
        "iss": iss,
        "sub": "smoke-user",
        "aud": aud,
        "exp": now + exp_in,
        "iat": now - 5,
        "scope": scope,
        "client_id": "smoke-client",
    }
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "at+jwt", "kid": KID})


def post(port: int, bearer: str | None) -> tuple[int, str, str]:
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
    }
    if bearer is not None:
        headers["authorization"] = f"Bearer {bearer}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request("POST", "/mcp", body=BODY, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheader("content-type") or "", resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def echo_text(body: str) -> str | None:
    try:
        msg = json.loads(body)
        items = msg["result"]["content"]
        return next(i["text"] for i in items if i.get("type") == "text")
    except (ValueError, KeyError, TypeError, StopIteration):
        return None


def stop(proc: subprocess.Popen) -> bool:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; True when SIGTERM sufficed."""
    if proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)
        return False


def smoke(peer: str, auth: AuthServer, key, other_key) -> None:
    port = free_port()
    audience = f"http://127.0.0.1:{port}/mcp"
    env = dict(
        os.environ,
        PEER_PORT=str(port),
        PEER_ISSUER=auth.issuer,
        PEER_JWKS_URI=auth.jwks_uri,
        PEER_AUDIENCE=audience,
    )
    stderr = tempfile.TemporaryFile()
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(ROOT / "benches" / "peers" / peer / "run.sh")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    lines: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.put(raw)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()

    def stderr_text() -> str:
        stderr.seek(0)
        return stderr.read().decode("utf-8", "replace").strip()

    try:
        try:
            first = lines.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            first = None
        expected = f"ready {audience}"
        got = first.decode("utf-8", "replace").rstrip("\n") if first else None
        if not check(
            peer,
            "ready line",
            got == expected,
            f"{time.monotonic() - started:.1f}s" if got == expected else f"got {got!r}; stderr: {stderr_text()[-2000:]}",
        ):
            return

        exe = os.path.basename(os.readlink(f"/proc/{proc.pid}/exe"))
        check(peer, "run.sh execs the server (pid is the server's)", exe not in ("bash", "sh", "dash"), exe)

        stderr_before = stderr.seek(0, os.SEEK_END)
        iss = auth.issuer
        fetches_before = auth.jwks_fetches

        status, ctype, body = post(port, token(key, iss=iss, aud=audience))
        text = echo_text(body)
        check(
            peer,
            "valid token -> 200 JSON with hello",
            status == 200 and ctype.startswith("application/json") and text == "hello",
            f"{status} {ctype} {body[:300]}",
        )
        status, _, body = post(port, token(key, iss=iss, aud=audience))
        check(peer, "valid token again -> 200", status == 200 and echo_text(body) == "hello", str(status))
        fetched = auth.jwks_fetches - fetches_before
        check(peer, "key set fetched once for both requests", fetched == 1, f"{fetched} fetch(es)")

        for name, bearer, want in [
            ("no token -> 401", None, (401,)),
            ("wrong aud -> 401", token(key, iss=iss, aud="http://127.0.0.1:1/mcp"), (401,)),
            ("signed by another key -> 401", token(other_key, iss=iss, aud=audience), (401,)),
            ("wrong iss -> 401", token(key, iss="http://127.0.0.1:1", aud=audience), (401,)),
            ("expired -> 401", token(key, iss=iss, aud=audience, exp_in=-120), (401,)),
            ("not a JWT -> 401", "not-a-jwt", (401,)),
            ("no files:read scope -> 403 (or 401)", token(key, iss=iss, aud=audience, scope="files:write"), (403, 401)),
        ]:
            status, _, body = post(port, bearer)
            check(peer, name, status in want, f"{status} {body[:200]}")

        # Per-request silence: nothing new on stderr, nothing on stdout after the ready line.
        time.sleep(0.3)
        grown = stderr.seek(0, os.SEEK_END) - stderr_before
        check(peer, "no per-request logging on stderr", grown == 0, stderr_text()[-500:] if grown else "")
        extra = []
        while True:
            try:
                item = lines.get_nowait()
            except queue.Empty:
                break
            if item is None:
                break
            extra.append(item)
        check(peer, "nothing on stdout after the ready line", not extra, repr(b"".join(extra)[:200]) if extra else "")
        alive = proc.poll() is None
        check(peer, "still running", alive, "" if alive else f"exit {proc.returncode}")
        check(peer, "stops on SIGTERM", stop(proc), f"within {STOP_TIMEOUT:.0f}s")
    finally:
        stop(proc)
        stderr.close()


def main() -> int:
    peers = sys.argv[1:] or PEERS
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        print(f"unknown peer(s): {', '.join(unknown)}; known: {', '.join(PEERS)}", file=sys.stderr)
        return 2
    key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    public_jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    public_jwk.update({"kid": KID, "alg": "ES256", "use": "sig"})
    auth = AuthServer(public_jwk)
    try:
        for peer in peers:
            smoke(peer, auth, key, other_key)
    finally:
        auth.close()
    print(f"{'all checks passed' if failures == 0 else f'{failures} check(s) failed'} ({', '.join(peers)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
