"""The official MCP Python SDK's OAuth client against mcp-guard's quickstart server.

Usage: python journey.py MODE MCP_URL [CONTENT]

MODE is the server's posture: `sign-in` (every request needs a token, so the first 401 answers
the connection's first request) or `anonymous` (the client connects and calls the public tool
`about` without a token, and the first 401 answers the call of a protected tool). CONTENT is what
the journey writes to /notes/python-sdk.txt once stepped up.

The SDK does the whole journey by itself (`OAuthClientProvider` as the httpx2 auth of the
streamable HTTP transport): the 401, protected resource metadata, authorization server
metadata, dynamic client registration, the authorization code request with PKCE and a resource
indicator, the token exchange, and on the 403 `insufficient_scope` of a tool needing more, the
step-up re-authorization with the union of the scopes and the retry of the call.

This script only plays the user's browser and prints what happened, one line per step, as
`step: detail`, from what went over the wire (httpx2 event hooks) and what the SDK handed the
application (the token storage, the redirect and callback handlers). Any failure, or any
request to a host other than 127.0.0.1, exits non-zero.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

WRITE_PATH = "/notes/python-sdk.txt"
DEFAULT_CONTENT = "hello from the MCP Python SDK"
MODES = ("sign-in", "anonymous")


def say(line: str) -> None:
    print(line, flush=True)


class MemoryStorage:
    """The SDK's `TokenStorage`, in memory; reports what the SDK stores."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        say(f'token: granted scope="{tokens.scope}" token_type={tokens.token_type} '
            f"refresh_token={'yes' if tokens.refresh_token else 'no'}")

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info
        say(f"registered: client_id={client_info.client_id} "
            f"token_endpoint_auth_method={client_info.token_endpoint_auth_method}")


class Browser:
    """The user agent: opens the authorization URL, which the auto-approving development
    authorization server answers with a redirect to the redirect URI."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.pending: AuthorizationCodeResult | None = None

    async def open(self, authorization_url: str) -> None:
        query = parse_qs(urlsplit(authorization_url).query)
        one = lambda name: query.get(name, ["<none>"])[0]  # noqa: E731
        say(f'authorize: scope="{one("scope")}" resource={one("resource")} '
            f"code_challenge_method={one('code_challenge_method')} "
            f"state={'yes' if 'state' in query else 'no'} client_id={one('client_id')}")
        check_loopback(authorization_url)
        async with httpx2.AsyncClient(follow_redirects=False, timeout=20) as http:
            resp = await http.get(authorization_url)
        location = resp.headers.get("location")
        if not resp.is_redirect or not location:
            raise SystemExit(f"the authorization endpoint answered {resp.status_code} without a redirect: {resp.text[:300]}")
        if not location.startswith(self.redirect_uri + "?"):
            raise SystemExit(f"the authorization endpoint redirected elsewhere: {location}")
        back = parse_qs(urlsplit(location).query)
        if "error" in back:
            raise SystemExit(f"the authorization endpoint refused: {location}")
        say(f"browser: {resp.status_code} to the redirect_uri with "
            + ", ".join(k for k in ("code", "state", "iss") if k in back))
        self.pending = AuthorizationCodeResult(
            code=back["code"][0],
            state=back.get("state", [None])[0],
            iss=back.get("iss", [None])[0],
        )

    async def callback(self) -> AuthorizationCodeResult:
        if self.pending is None:
            raise SystemExit("the SDK asked for the callback before the redirect")
        result, self.pending = self.pending, None
        return result


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise SystemExit(f"refusing a request to {url}: only 127.0.0.1 may be contacted")


def body_of(request: httpx2.Request) -> bytes:
    try:
        return request.content
    except httpx2.RequestNotRead:
        return b""


def rpc_of(request: httpx2.Request) -> str:
    """`rpc=METHOD` (and `tool=NAME` for a tool call) of a JSON-RPC request, for the transcript."""
    try:
        body = json.loads(body_of(request) or b"null")
    except ValueError:
        return "rpc=?"
    if not isinstance(body, dict) or "method" not in body:
        return "rpc=-"
    out = f"rpc={body['method']}"
    if body["method"] == "tools/call":
        out += f" tool={(body.get('params') or {}).get('name')}"
    return out


def main(mode: str, mcp_url: str, content: str) -> int:
    return asyncio.run(journey(mode, mcp_url, content))


async def journey(mode: str, mcp_url: str, content: str) -> int:
    # A loopback redirect URI on a port held for the run; nothing needs to listen, the
    # browser reads the redirect itself.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    redirect_uri = f"http://127.0.0.1:{holder.getsockname()[1]}/callback"
    browser = Browser(redirect_uri)
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP Python SDK journey",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.callback,
    )
    seen = {"401": False, "403": False}
    # The last answer to each tool's call: (HTTP status, whether it carried a token).
    calls: dict[str, tuple[int, bool]] = {}

    async def on_request(request: httpx2.Request) -> None:
        check_loopback(str(request.url))

    async def on_response(response: httpx2.Response) -> None:
        request = response.request
        url = str(request.url)
        path = request.url.path
        endpoint = url.split("?")[0] == mcp_url
        rpc = rpc_of(request) if endpoint and request.method == "POST" else ""
        if rpc.startswith("rpc=tools/call "):
            calls[rpc.split("tool=", 1)[1]] = (response.status_code, "authorization" in request.headers)
        if endpoint and response.status_code == 401 and not seen["401"]:
            seen["401"] = True
            say(f"unauthorized: {request.method} {rpc} {response.status_code} "
                f"WWW-Authenticate: {response.headers.get('www-authenticate')}")
        elif endpoint and response.status_code == 403 and not seen["403"]:
            seen["403"] = True
            say(f"forbidden: {request.method} {rpc} {response.status_code} "
                f"WWW-Authenticate: {response.headers.get('www-authenticate')}")
        elif path.startswith("/.well-known/oauth-protected-resource"):
            say(f"resource-metadata: {request.method} {url} -> {response.status_code}")
        elif path.startswith("/.well-known/oauth-authorization-server") or path.startswith(
            "/.well-known/openid-configuration"
        ):
            say(f"auth-server-metadata: {request.method} {url} -> {response.status_code}")
        elif path == "/register":
            say(f"registration: {request.method} {url} -> {response.status_code}")
        elif path == "/token":
            form = parse_qs(body_of(request).decode("utf-8", "replace"))
            grant = form.get("grant_type", ["?"])[0]
            scope = f' scope="{form["scope"][0]}"' if "scope" in form else ""
            say(f"token-request: {request.method} {url} grant_type={grant}{scope} -> {response.status_code}")
        elif url.split("?")[0] == mcp_url and response.status_code >= 400:
            say(f"mcp-error: {request.method} {url} -> {response.status_code} "
                f"WWW-Authenticate: {response.headers.get('www-authenticate')}")

    http = httpx2.AsyncClient(
        auth=provider,
        timeout=httpx2.Timeout(30, read=60),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    async with http:
        async with Client(streamable_http_client(mcp_url, http_client=http)) as client:
            say(f"connected: protocol {client.protocol_version}")
            if mode == "anonymous":
                # The public tool, before any token exists.
                about = await client.call_tool("about", {})
                status, with_token = calls.get("about", (0, True))
                if about.is_error or status != 200 or with_token or storage.tokens is not None:
                    raise SystemExit(f"about was expected to answer 200 without a token: {status} {text(about)}")
                say(f"about: {status} without a token: {text(about)}")
            who = await client.call_tool("whoami", {})
            say(f"whoami: {text(who)}")
            if who.is_error:
                raise SystemExit("whoami failed")
            wrote = await client.call_tool("write_file", {"path": WRITE_PATH, "content": content})
            if not seen["403"]:
                raise SystemExit("write_file was expected to meet a 403 insufficient_scope first")
            say(f"write_file: {text(wrote)}")
            if wrote.is_error:
                raise SystemExit("write_file failed after the step-up")
            read = await client.call_tool("read_file", {"path": WRITE_PATH})
            say(f"read_file: {text(read)}")
            if read.is_error or text(read) != content:
                raise SystemExit("read_file did not return what was written")
    holder.close()
    say("done")
    return 0


def text(result) -> str:  # noqa: ANN001
    parts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return "\n".join(parts)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in MODES:
        print("usage: journey.py sign-in|anonymous MCP_URL [CONTENT]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else DEFAULT_CONTENT))
