// The official MCP TypeScript SDK v2 client (`@modelcontextprotocol/client`) and its OAuth
// client provider against mcp-guard's quickstart server.
//
// Usage: node journey.mjs MODE MCP_URL [CONTENT]
//
// MODE is the server's posture: `sign-in` (every request needs a token, so the first 401 answers
// the connection's first request) or `anonymous` (the client connects and calls the public tool
// `about` without a token, and the first 401 answers the call of a protected tool). CONTENT is
// what the journey writes to /notes/typescript-sdk-v2.txt once stepped up.
//
// The client negotiates the protocol version (`versionNegotiation: { mode: 'auto' }`, which
// probes with `server/discover` and speaks 2026-07-28 when the server offers it). The SDK's
// StreamableHTTPClientTransport with an OAuthClientProvider does the protocol: on the 401 it
// discovers the protected resource metadata and the authorization server metadata, registers the
// client dynamically and builds the authorization request (PKCE S256, resource indicator, the
// challenge's scope). On a 403 `insufficient_scope` it steps up by itself (v2, SEP-2350): the
// union of the requested and the challenged scopes, a fresh authorization request when that union
// exceeds the token's scope. Either way the application is told to redirect the user
// (`redirectToAuthorization`, then `UnauthorizedError`) and hands the callback back with
// `transport.finishAuth(callbackParams)` (which checks `iss`, RFC 9207) before calling again.
//
// This script plays the user's browser and prints what happened, one line per step, as
// `step: detail`, from what went over the wire (the transport's `fetch`) and what the SDK handed
// the provider. Any failure, or any request to a host other than 127.0.0.1, exits non-zero.

import { randomBytes } from 'node:crypto';

import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';

const WRITE_PATH = '/notes/typescript-sdk-v2.txt';
const DEFAULT_CONTENT = 'hello from the MCP TypeScript SDK v2';
const MODES = ['sign-in', 'anonymous'];

const say = line => console.log(line);

function fail(message) {
    console.error(`FAILED: ${message}`);
    process.exit(1);
}

function checkLoopback(url) {
    const host = new URL(String(url)).hostname;
    if (host !== '127.0.0.1') {
        fail(`refusing a request to ${url}: only 127.0.0.1 may be contacted`);
    }
}

/** `rpc=METHOD` (and `tool=NAME` for a tool call) of a JSON-RPC request body, for the transcript. */
function rpcOf(body) {
    let msg;
    try {
        msg = JSON.parse(typeof body === 'string' ? body : '');
    } catch {
        return 'rpc=?';
    }
    if (!msg || typeof msg !== 'object' || !('method' in msg)) return 'rpc=-';
    return msg.method === 'tools/call' ? `rpc=${msg.method} tool=${msg.params?.name}` : `rpc=${msg.method}`;
}

/** The OAuthClientProvider: one credential set, in memory; its redirect is the user's browser. */
class JourneyProvider {
    constructor(redirectUrl, wire) {
        this._redirectUrl = redirectUrl;
        this._wire = wire;
        this._state = undefined;
        this._codeVerifier = undefined;
        this._clientInformation = undefined;
        this._tokens = undefined;
        this._discovery = undefined;
        this.pendingCallback = undefined;
    }
    get redirectUrl() {
        return this._redirectUrl;
    }
    get clientMetadata() {
        return {
            client_name: 'MCP TypeScript SDK v2 journey',
            redirect_uris: [this._redirectUrl],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none'
        };
    }
    state() {
        this._state = randomBytes(24).toString('base64url');
        return this._state;
    }
    clientInformation() {
        return this._clientInformation;
    }
    saveClientInformation(info) {
        this._clientInformation = info;
        say(`registered: client_id=${info.client_id} token_endpoint_auth_method=${info.token_endpoint_auth_method}`);
    }
    tokens() {
        return this._tokens;
    }
    saveTokens(tokens) {
        this._tokens = tokens;
        say(`token: granted scope="${tokens.scope}" token_type=${tokens.token_type} ` +
            `refresh_token=${tokens.refresh_token ? 'yes' : 'no'} grant_type=${this._wire.lastGrantType}`);
    }
    saveCodeVerifier(v) {
        this._codeVerifier = v;
    }
    codeVerifier() {
        if (!this._codeVerifier) throw new Error('no code verifier saved');
        return this._codeVerifier;
    }
    saveDiscoveryState(state) {
        this._discovery = state;
    }
    discoveryState() {
        return this._discovery;
    }
    invalidateCredentials(scope) {
        if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
        if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
        if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
        if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
    }
    /** The browser: the auto-approving development authorization server redirects at once. */
    async redirectToAuthorization(authorizationUrl) {
        const q = authorizationUrl.searchParams;
        say(`authorize: scope="${q.get('scope')}" resource=${q.get('resource')} ` +
            `code_challenge_method=${q.get('code_challenge_method')} state=${q.has('state') ? 'yes' : 'no'} ` +
            `client_id=${q.get('client_id')}`);
        checkLoopback(authorizationUrl);
        const resp = await fetch(authorizationUrl, { redirect: 'manual', signal: AbortSignal.timeout(20000) });
        const location = resp.headers.get('location');
        if (resp.status < 300 || resp.status >= 400 || !location) {
            fail(`the authorization endpoint answered ${resp.status} without a redirect: ${(await resp.text()).slice(0, 300)}`);
        }
        if (!location.startsWith(`${this._redirectUrl}?`)) {
            fail(`the authorization endpoint redirected elsewhere: ${location}`);
        }
        const back = new URL(location).searchParams;
        if (back.has('error')) fail(`the authorization endpoint refused: ${location}`);
        // The SDK checks `iss` in finishAuth; `state` is the application's to check.
        if (back.get('state') !== this._state) fail(`state mismatch: ${back.get('state')} != ${this._state}`);
        say(`browser: ${resp.status} to the redirect_uri with ` +
            ['code', 'state', 'iss'].filter(k => back.has(k)).join(', ') + '; state checked, iss left to the SDK');
        this.pendingCallback = back;
    }
    takeCallback() {
        const back = this.pendingCallback;
        this.pendingCallback = undefined;
        return back;
    }
}

async function main(mode, mcpUrl, content) {
    // `calls`: the last answer to each tool's call, as { status, withToken }.
    const wire = { lastGrantType: undefined, seen401: false, seen403: 0, calls: {} };
    // Every request of the transport and of the SDK's OAuth code goes through this fetch.
    const loggingFetch = async (input, init) => {
        const url = String(input instanceof Request ? input.url : input);
        checkLoopback(url);
        const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
        let requestedScope = '';
        if (init?.body instanceof URLSearchParams && init.body.has('grant_type')) {
            wire.lastGrantType = init.body.get('grant_type');
            if (init.body.has('scope')) requestedScope = ` scope="${init.body.get('scope')}"`;
        }
        const resp = await fetch(input, init);
        const path = new URL(url).pathname;
        const endpoint = url.split('?')[0] === mcpUrl;
        const rpc = endpoint && method === 'POST' ? rpcOf(init?.body) : '';
        if (rpc.startsWith('rpc=tools/call ')) {
            const withToken = new Headers(init?.headers).has('authorization');
            wire.calls[rpc.split('tool=')[1]] = { status: resp.status, withToken };
        }
        if (endpoint && resp.status === 401 && !wire.seen401) {
            wire.seen401 = true;
            say(`unauthorized: ${method} ${rpc} 401 WWW-Authenticate: ${resp.headers.get('www-authenticate')}`);
        } else if (endpoint && resp.status === 403) {
            wire.seen403 += 1;
            say(`forbidden: ${method} ${rpc} 403 WWW-Authenticate: ${resp.headers.get('www-authenticate')}`);
        } else if (path.startsWith('/.well-known/oauth-protected-resource')) {
            say(`resource-metadata: ${method} ${url} -> ${resp.status}`);
        } else if (path.startsWith('/.well-known/oauth-authorization-server') || path.startsWith('/.well-known/openid-configuration')) {
            say(`auth-server-metadata: ${method} ${url} -> ${resp.status}`);
        } else if (path === '/register') {
            say(`registration: ${method} ${url} -> ${resp.status}`);
        } else if (path === '/token') {
            say(`token-request: ${method} ${url} grant_type=${wire.lastGrantType}${requestedScope} -> ${resp.status}`);
        } else if (endpoint && resp.status >= 400) {
            say(`mcp-error: ${method} ${url} ${rpc} -> ${resp.status} WWW-Authenticate: ${resp.headers.get('www-authenticate')}`);
        }
        return resp;
    };

    const redirectUrl = `http://127.0.0.1:${40000 + Math.floor(Math.random() * 20000)}/callback`;
    const provider = new JourneyProvider(redirectUrl, wire);
    let transport;
    let client;
    const connect = async () => {
        await client?.close();
        transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: loggingFetch });
        client = new Client(
            { name: 'mcp-typescript-sdk-v2-journey', version: '1.0.0' },
            { versionNegotiation: { mode: 'auto' } }
        );
        await client.connect(transport);
    };
    const connected = () =>
        say(`connected: protocol ${client.getNegotiatedProtocolVersion() ?? '?'} era ${client.getProtocolEra() ?? '?'} ` +
            `session ${transport.sessionId ?? 'none'}`);

    // Connecting: a 401 here makes the SDK redirect the user; finish and reconnect.
    try {
        await connect();
    } catch (e) {
        if (!(e instanceof UnauthorizedError) || !provider.pendingCallback) throw e;
        await transport.finishAuth(provider.takeCallback());
        await connect();
    }
    connected();

    // A call that may meet the 401 (when connecting needed no token) or the 403 of a tool
    // needing more; the SDK handles both up to the redirect, then `finishAuth` and call again.
    const call = async (name, args) => {
        for (let attempt = 0; attempt < 4; attempt++) {
            try {
                return await client.callTool({ name, arguments: args });
            } catch (e) {
                if (e instanceof UnauthorizedError && provider.pendingCallback) {
                    await transport.finishAuth(provider.takeCallback());
                    continue;
                }
                if (e?.status === 404 && transport.sessionId) {
                    // The MCP transport spec: a 404 to a request carrying a session id means
                    // the session is gone, and the client MUST start a new one.
                    say(`session: 404 on session ${transport.sessionId} (${e.message}); starting a new session`);
                    await connect();
                    connected();
                    continue;
                }
                throw e;
            }
        }
        fail(`${name}: still refused after four attempts`);
    };
    const text = r => (r.content ?? []).filter(c => c.type === 'text').map(c => c.text).join('\n');

    if (mode === 'anonymous') {
        // The public tool, before any token exists.
        const about = await call('about', {});
        const seen = wire.calls.about ?? {};
        if (about.isError || seen.status !== 200 || seen.withToken || provider.tokens()) {
            fail(`about was expected to answer 200 without a token: ${JSON.stringify(seen)} ${text(about)}`);
        }
        say(`about: ${seen.status} without a token: ${text(about)}`);
    }
    const who = await call('whoami', {});
    say(`whoami: ${text(who)}`);
    if (who.isError) fail('whoami failed');
    const wrote = await call('write_file', { path: WRITE_PATH, content });
    if (wire.seen403 === 0) fail('write_file was expected to meet a 403 insufficient_scope first');
    say(`write_file: ${text(wrote)}`);
    if (wrote.isError) fail('write_file failed after the step-up');
    const read = await call('read_file', { path: WRITE_PATH });
    say(`read_file: ${text(read)}`);
    if (read.isError || text(read) !== content) fail('read_file did not return what was written');
    await transport.terminateSession?.().catch(() => {});
    await client.close();
    say('done');
}

if ((process.argv.length !== 4 && process.argv.length !== 5) || !MODES.includes(process.argv[2])) {
    console.error('usage: node journey.mjs sign-in|anonymous MCP_URL [CONTENT]');
    process.exit(2);
}
main(process.argv[2], process.argv[3], process.argv[4] ?? DEFAULT_CONTENT).then(
    () => process.exit(0),
    e => fail(e?.stack ?? String(e))
);
