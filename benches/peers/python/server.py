"""Peer MCP server on the official Python SDK (mcp 2.x MCPServer), for the load benchmark.

Stateless streamable HTTP with JSON responses at /mcp, one `echo` tool, bearer tokens
verified through the SDK's own auth hook (a TokenVerifier with AuthSettings) by PyJWT.
Contract: benches/peers/README.md.
"""

from __future__ import annotations

import asyncio
import os
import sys

import jwt
import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

PORT = int(os.environ["PEER_PORT"])
ISSUER = os.environ["PEER_ISSUER"]
JWKS_URI = os.environ["PEER_JWKS_URI"]
AUDIENCE = os.environ["PEER_AUDIENCE"]
REQUIRED_SCOPE = "files:read"


class JwtTokenVerifier:
    """Verifies ES256 JWT access tokens against the authorization server's key set.

    The key set is fetched once, on first use, and kept (PyJWKClient's caches); an
    unknown `kid` makes PyJWKClient look again at most once per cooldown.
    """

    def __init__(self) -> None:
        self._jwks = jwt.PyJWKClient(JWKS_URI, cache_keys=True, cache_jwk_set=True, lifespan=86400)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["ES256"],
                issuer=ISSUER,
                audience=AUDIENCE,
                options={"require": ["exp", "iss", "aud"]},
            )
        except Exception:  # any failure to verify is an invalid token (401), never a 500
            return None
        # `scope` is space-separated; the SDK's RequireAuthMiddleware checks the
        # required scope against this list (403 insufficient_scope when missing).
        scope = claims.get("scope")
        scopes = scope.split() if isinstance(scope, str) else []
        client_id = claims.get("client_id")
        return AccessToken(
            token=token,
            client_id=client_id if isinstance(client_id, str) else "",
            scopes=scopes,
            expires_at=claims.get("exp"),
            resource=AUDIENCE,
            subject=claims.get("sub"),
            claims={"iss": claims.get("iss")},
        )


server = MCPServer(
    "peer",
    token_verifier=JwtTokenVerifier(),
    auth=AuthSettings(
        issuer_url=ISSUER,
        resource_server_url=AUDIENCE,
        required_scopes=[REQUIRED_SCOPE],
        # The verifier checks `aud` itself (PyJWT's audience check).
        validate_token_resource=False,
    ),
    log_level="WARNING",
)


@server.tool(structured_output=False)
def echo(text: str) -> str:
    """Echo the text back."""
    return text


class PeerServer(uvicorn.Server):
    """uvicorn's server, announcing readiness once its socket is listening."""

    async def startup(self, sockets=None) -> None:  # type: ignore[override]
        await super().startup(sockets=sockets)
        if not self.should_exit:
            sys.stdout.write(f"ready http://127.0.0.1:{PORT}/mcp\n")
            sys.stdout.flush()


def main() -> None:
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        host="127.0.0.1",
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=PORT,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    asyncio.run(PeerServer(config).serve())


if __name__ == "__main__":
    main()
