// Loaded into each MCP Inspector CLI process with `node --import` by journey.mjs: records what
// the Inspector sends and gets over HTTP, and refuses any request to a host other than
// 127.0.0.1. It observes only; the Inspector does the protocol itself.
//
// Every request of the Inspector (the MCP transport's and its OAuth code's) goes through
// `globalThis.fetch`; this wraps it and appends one JSON line per answered request to the file
// named by MCP_GUARD_WIRE_LOG. Tokens are never written: only whether a request carried one, and
// the scope, type and refresh-token presence of a token response.

import { appendFileSync } from 'node:fs';

const log = process.env.MCP_GUARD_WIRE_LOG;
if (!log) throw new Error('wire.mjs: MCP_GUARD_WIRE_LOG is not set');
const record = event => appendFileSync(log, `${JSON.stringify({ from: 'inspector', ...event })}\n`);

/** `{ rpc, tool }` of a JSON-RPC request body. */
function rpcOf(body) {
    let msg;
    try {
        msg = JSON.parse(typeof body === 'string' ? body : '');
    } catch {
        return {};
    }
    if (!msg || typeof msg !== 'object' || !('method' in msg)) return {};
    return { rpc: msg.method, tool: msg.method === 'tools/call' ? msg.params?.name : undefined };
}

/** The form parameters of a request body, when it is a form. */
function formOf(body) {
    if (body instanceof URLSearchParams) return body;
    if (typeof body === 'string' && /^[\w.~%+-]+=/.test(body) && !body.startsWith('{')) return new URLSearchParams(body);
    return undefined;
}

const realFetch = globalThis.fetch;
globalThis.fetch = async function wiredFetch(input, init) {
    const request = input instanceof Request ? input : undefined;
    const url = String(request ? request.url : input);
    const method = init?.method ?? request?.method ?? 'GET';
    if (new URL(url).hostname !== '127.0.0.1') {
        record({ refused: url });
        throw new Error(`wire.mjs: refusing a request to ${url}: only 127.0.0.1 may be contacted`);
    }
    const headers = new Headers(init?.headers ?? request?.headers);
    const body = init?.body;
    const form = formOf(body);
    const resp = await realFetch(input, init);
    const event = {
        method,
        url,
        status: resp.status,
        withToken: headers.has('authorization'),
        ...rpcOf(body),
        wwwAuthenticate: resp.headers.get('www-authenticate') ?? undefined,
        grantType: form?.get('grant_type') ?? undefined,
        requestedScope: form?.get('scope') ?? undefined
    };
    const path = new URL(url).pathname;
    if ((path === '/register' || path === '/token') && resp.ok) {
        const answer = await resp
            .clone()
            .json()
            .catch(() => ({}));
        if (path === '/register') {
            event.clientId = answer.client_id;
            event.tokenEndpointAuthMethod = answer.token_endpoint_auth_method;
        } else {
            event.grantedScope = answer.scope;
            event.tokenType = answer.token_type;
            event.refreshToken = Boolean(answer.refresh_token);
        }
    }
    record(event);
    return resp;
};
