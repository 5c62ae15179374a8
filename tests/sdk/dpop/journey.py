"""A DPoP journey with requests-oauth2client against the quickstart server.

Usage: journey.py MCP_URL

Prints one `step: detail` line per step: the 401 and its challenges, the protected resource
metadata, the authorization server metadata, dynamic registration of a confidential client,
a client_credentials token request with a DPoP proof (the library's own key and proofs), two
tool calls with the DPoP-bound token (a fresh proof each; the library answers a
`use_dpop_nonce` challenge by itself), a replayed proof, and the token presented as Bearer.
"""

import json
import sys

import requests
from requests_oauth2client import DPoPToken, OAuth2Client

MCP_URL = sys.argv[1]
HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "whoami",
}
BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "whoami",
            "arguments": {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
            },
        },
    }
)


def step(name, detail):
    print(f"{name}: {detail}", flush=True)


def challenges(resp):
    return resp.headers.get("WWW-Authenticate", "")


http = requests.Session()

resp = http.post(MCP_URL, headers=HEADERS, data=BODY, timeout=10)
step("challenge", f"{resp.status_code} {challenges(resp)}")
metadata_url = MCP_URL.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
prm = http.get(metadata_url, timeout=10).json()
step("metadata", f"dpop_signing_alg_values_supported={' '.join(prm['dpop_signing_alg_values_supported'])}")
issuer = prm["authorization_servers"][0]
asm = http.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
step("as-metadata", f"dpop_signing_alg_values_supported={' '.join(asm.get('dpop_signing_alg_values_supported', []))}")

reg = http.post(
    asm["registration_endpoint"],
    json={
        "client_name": "requests-oauth2client DPoP journey",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
    },
    timeout=10,
).json()
step("registered", reg["client_id"])

client = OAuth2Client(
    token_endpoint=asm["token_endpoint"],
    client_id=reg["client_id"],
    client_secret=reg["client_secret"],
    dpop_bound_access_tokens=True,
    # The endpoints are http on 127.0.0.1: the library refuses non-https URLs otherwise.
    testing=True,
)
token = client.client_credentials(scope="files:read", resource=MCP_URL)
step("token", f"{type(token).__name__} token_type={token.token_type} jkt={token.dpop_key.dpop_jkt}")
assert isinstance(token, DPoPToken)

for n in (1, 2):
    resp = http.post(MCP_URL, headers=HEADERS, data=BODY, auth=token, timeout=10)
    text = resp.text
    step(f"call-{n}", f"{resp.status_code} nonce={'yes' if token.dpop_key.rs_nonce else 'no'} {text[:200]}")

sent = resp.request
replay = http.post(
    MCP_URL,
    headers={**HEADERS, "authorization": sent.headers["Authorization"], "dpop": sent.headers["DPoP"]},
    data=BODY,
    timeout=10,
)
step("replay", f"{replay.status_code} {challenges(replay)}")

bearer = http.post(
    MCP_URL,
    headers={**HEADERS, "authorization": f"Bearer {token.access_token}"},
    data=BODY,
    timeout=10,
)
step("as-bearer", f"{bearer.status_code} {challenges(bearer)}")
