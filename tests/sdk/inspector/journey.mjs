// The MCP Inspector's CLI mode (`mcp-inspector --cli`, @modelcontextprotocol/inspector) against
// mcp-guard's quickstart server.
//
// Usage: node journey.mjs MODE MCP_URL [CONTENT]
//
// MODE is one of:
// - `sign-in`: the server's sign-in posture (every request needs a token);
// - `anonymous`: the anonymous posture (the public tool `about` first, without a token; the
//   first 401 answers the call of a protected tool);
// - `default-scope`: one call of `whoami` with the Inspector left unconfigured, to see which
//   scope it asks for by itself.
// CONTENT is what the journey writes to /notes/mcp-inspector.txt once stepped up.
//
// Each MCP call is one run of the Inspector CLI (`--method tools/call --tool-name …`), and the
// Inspector does everything itself: the MCP calls, the 401, protected resource and
// authorization server metadata discovery, dynamic client registration, the authorization
// request (PKCE S256, resource indicator) and its loopback callback listener (`--callback-url`),
// the token exchange, and on a 403 `insufficient_scope` the step-up: it asks on stdin whether to
// proceed, then authorizes again for the union of the scopes and retries the call. Its OAuth
// state (the registered client, the tokens) is kept between runs in a file store
// (MCP_INSPECTOR_SECRET_STORE=file) under a HOME made for this journey and removed after it.
// Left to itself the Inspector asks for every scope of the metadata's `scopes_supported` (not
// the challenge's `scope`), so it would never meet the 403; in `sign-in` and `anonymous` its
// server entry (a `--config` file) says `"oauth": {"scopes": "files:read"}`, the scope the 401
// challenges for, as a user sets it in the Inspector's server settings.
//
// This script only plays the user: the browser (it follows the authorization URL the Inspector
// prints, which the auto-approving development authorization server answers with a redirect to
// the Inspector's callback, and opens that), and the "y" to the step-up question. What went over
// the wire comes from wire.mjs, loaded into each Inspector process. It prints one line per step,
// as `step: detail`. Any failure, or any request to a host other than 127.0.0.1, exits non-zero.

import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE = join(HERE, 'node_modules', '@modelcontextprotocol', 'inspector');
const LAUNCHER = join(PACKAGE, 'clients', 'launcher', 'build', 'index.js');
const WIRE = pathToFileURL(join(HERE, 'wire.mjs')).href;
const WRITE_PATH = '/notes/mcp-inspector.txt';
const DEFAULT_CONTENT = 'hello from the MCP Inspector CLI';
const MODES = ['sign-in', 'anonymous', 'default-scope'];
const CONFIGURED_SCOPE = 'files:read';
const RUN_TIMEOUT_MS = 30000;
const STEP_UP_QUESTION = 'Proceed with step-up authorization? [y/N]';

const say = line => console.log(line);

let home;
let child;
process.on('exit', () => {
    child?.kill('SIGKILL');
    if (home) rmSync(home, { recursive: true, force: true });
});

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

/** A port on 127.0.0.1 free now, for the Inspector's OAuth callback listener. */
function freePort() {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            server.close(() => resolve(port));
        });
    });
}

/**
 * The environment of an Inspector run: this process's, without proxies, desktop sessions and
 * the Inspector's own settings, and with the journey's HOME, the file secret store, the wire
 * log, and the CLI's OAuth allowed without a TTY. The Inspector then also "opens a browser"
 * through its `open` dependency (xdg-open on Linux); BROWSER=true, with no desktop session to
 * find, makes that a no-op and leaves the authorization URL to this script.
 */
function inspectorEnv(wireLog) {
    const env = {};
    const dropped = /^(MCP_|INSPECTOR_|HTTPS?_PROXY$|ALL_PROXY$|NO_PROXY$|DISPLAY$|WAYLAND_DISPLAY$|XDG_|DESKTOP_SESSION$|KDE_|GNOME_|MATE_|DBUS_SESSION_BUS_ADDRESS$)/i;
    for (const [k, v] of Object.entries(process.env)) {
        if (!dropped.test(k)) env[k] = v;
    }
    return {
        ...env,
        HOME: home,
        USERPROFILE: home,
        NO_PROXY: '127.0.0.1,localhost',
        NO_COLOR: '1',
        BROWSER: 'true',
        MCP_AUTO_OPEN_ENABLED: 'true',
        MCP_INSPECTOR_SECRET_STORE: 'file',
        MCP_GUARD_WIRE_LOG: wireLog
    };
}

async function main(mode, mcpUrl, content) {
    if (process.platform !== 'linux') {
        fail(`the Inspector journey runs on Linux only: elsewhere the Inspector would open a real browser (${process.platform})`);
    }
    const version = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8')).version;
    home = mkdtempSync(join(tmpdir(), 'mcp-guard-inspector-'));
    const wireLog = join(home, 'wire.jsonl');
    writeFileSync(wireLog, '');
    const note = (step, detail) => appendFileSync(wireLog, `${JSON.stringify({ from: 'journey', step, detail })}\n`);
    const callbackUrl = `http://127.0.0.1:${await freePort()}/oauth/callback`;
    let target;
    if (mode === 'default-scope') {
        target = [mcpUrl, '--transport', 'http'];
        say(`started: MCP Inspector ${version} CLI, unconfigured, callback ${callbackUrl}`);
    } else {
        const config = join(home, 'mcp.json');
        const entry = { type: 'streamable-http', url: mcpUrl, oauth: { scopes: CONFIGURED_SCOPE } };
        writeFileSync(config, JSON.stringify({ mcpServers: { quickstart: entry } }, null, 2));
        target = ['--config', config, '--server', 'quickstart'];
        say(`started: MCP Inspector ${version} CLI, server entry oauth.scopes="${CONFIGURED_SCOPE}", callback ${callbackUrl}`);
    }

    // What the wire log holds, rendered as transcript lines, from where the last run stopped.
    const wire = { offset: 0, seen401: false, events: [] };
    const flush = () => {
        const all = readFileSync(wireLog, 'utf8');
        const fresh = all.slice(wire.offset);
        wire.offset = all.length;
        for (const line of fresh.split('\n').filter(Boolean)) {
            const e = JSON.parse(line);
            wire.events.push(e);
            render(e);
        }
    };
    const render = e => {
        if (e.from === 'journey') return say(`${e.step}: ${e.detail}`);
        if (e.refused) fail(`the Inspector tried to reach ${e.refused}`);
        const path = new URL(e.url).pathname;
        const endpoint = e.url.split('?')[0] === mcpUrl;
        const rpc = e.rpc ? `rpc=${e.rpc}${e.tool ? ` tool=${e.tool}` : ''}` : '';
        if (endpoint && e.status === 401 && !wire.seen401) {
            wire.seen401 = true;
            say(`unauthorized: ${e.method} ${rpc} 401 WWW-Authenticate: ${e.wwwAuthenticate}`);
        } else if (endpoint && e.status === 403) {
            say(`forbidden: ${e.method} ${rpc} 403 WWW-Authenticate: ${e.wwwAuthenticate}`);
        } else if (endpoint && e.rpc === 'tools/call') {
            say(`call: ${e.method} ${rpc} token=${e.withToken ? 'yes' : 'no'} -> ${e.status}`);
        } else if (endpoint && e.status >= 400) {
            say(`mcp-error: ${e.method} ${rpc} -> ${e.status} WWW-Authenticate: ${e.wwwAuthenticate}`);
        } else if (path.startsWith('/.well-known/oauth-protected-resource')) {
            say(`resource-metadata: ${e.method} ${e.url} -> ${e.status}`);
        } else if (path.startsWith('/.well-known/oauth-authorization-server') || path.startsWith('/.well-known/openid-configuration')) {
            say(`auth-server-metadata: ${e.method} ${e.url} -> ${e.status}`);
        } else if (path === '/register') {
            say(`registration: ${e.method} ${e.url} -> ${e.status}`);
            if (e.clientId) say(`registered: client_id=${e.clientId} token_endpoint_auth_method=${e.tokenEndpointAuthMethod}`);
        } else if (path === '/token') {
            const scope = e.requestedScope === undefined ? '' : ` scope="${e.requestedScope}"`;
            say(`token-request: ${e.method} ${e.url} grant_type=${e.grantType}${scope} -> ${e.status}`);
            if (e.tokenType) {
                say(`token: granted scope="${e.grantedScope}" token_type=${e.tokenType} ` +
                    `refresh_token=${e.refreshToken ? 'yes' : 'no'} grant_type=${e.grantType}`);
            }
        } else if (endpoint) {
            // Answered MCP requests other than tool calls (connecting, lists): not steps.
        } else {
            say(`other: ${e.method} ${e.url} -> ${e.status}`);
        }
    };

    /** The browser: opens the authorization URL, then the Inspector's callback it redirects to. */
    const browse = async authorizationUrl => {
        const url = new URL(authorizationUrl);
        const q = url.searchParams;
        note('authorize', `scope="${q.get('scope')}" resource=${q.get('resource')} ` +
            `code_challenge_method=${q.get('code_challenge_method')} state=${q.has('state') ? 'yes' : 'no'} ` +
            `client_id=${q.get('client_id')}`);
        checkLoopback(url);
        if (q.get('redirect_uri') !== callbackUrl) fail(`the Inspector's redirect_uri is ${q.get('redirect_uri')}, not ${callbackUrl}`);
        const resp = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(20000) });
        const location = resp.headers.get('location');
        if (resp.status < 300 || resp.status >= 400 || !location) {
            fail(`the authorization endpoint answered ${resp.status} without a redirect: ${(await resp.text()).slice(0, 300)}`);
        }
        if (!location.startsWith(`${callbackUrl}?`)) fail(`the authorization endpoint redirected elsewhere: ${location}`);
        const back = new URL(location).searchParams;
        if (back.has('error')) fail(`the authorization endpoint refused: ${location}`);
        if (back.get('state') !== q.get('state')) fail(`state mismatch: ${back.get('state')} != ${q.get('state')}`);
        if (back.get('iss') !== url.origin) fail(`iss mismatch: ${back.get('iss')} != ${url.origin}`);
        note('browser', `${resp.status} to the redirect_uri with ` +
            ['code', 'state', 'iss'].filter(k => back.has(k)).join(', ') + '; state and iss checked');
        const answer = await fetch(location, { redirect: 'manual', signal: AbortSignal.timeout(20000) });
        const page = await answer.text();
        if (answer.status !== 200) fail(`the Inspector's callback answered ${answer.status}: ${page.slice(0, 300)}`);
        note('callback', `GET ${callbackUrl} -> ${answer.status} (the Inspector's listener took the code)`);
    };

    /** One run of the Inspector CLI calling `tool`; its result, once the run has exited 0. */
    const run = (tool, args) =>
        new Promise((resolve, reject) => {
            const argv = ['--import', WIRE, LAUNCHER, '--cli', ...target, '--method', 'tools/call', '--tool-name', tool,
                '--tool-args-json', JSON.stringify(args), '--callback-url', callbackUrl, '--format', 'json'];
            child = spawn(process.execPath, argv, { env: inspectorEnv(wireLog), stdio: ['pipe', 'pipe', 'pipe'] });
            const timer = setTimeout(() => {
                child.kill('SIGKILL');
                reject(new Error(`the Inspector's ${tool} run did not finish within ${RUN_TIMEOUT_MS} ms\n${stderr}`));
            }, RUN_TIMEOUT_MS);
            let stdout = '';
            let stderr = '';
            let pending = '';
            let answered = 0;
            const browsing = [];
            child.stdout.on('data', d => (stdout += d));
            child.stderr.on('data', d => {
                stderr += d;
                pending += d;
                let nl;
                while ((nl = pending.indexOf('\n')) >= 0) {
                    const line = pending.slice(0, nl).trimEnd();
                    pending = pending.slice(nl + 1);
                    onLine(line.startsWith(STEP_UP_QUESTION) ? line.slice(STEP_UP_QUESTION.length).trim() : line);
                }
                // The step-up question ends without a newline: answer it as the user.
                if (stderr.split(STEP_UP_QUESTION).length - 1 > answered) {
                    answered += 1;
                    note('inspector', `asks "${STEP_UP_QUESTION}"; answered y`);
                    child.stdin.end('y\n');
                }
            });
            const onLine = line => {
                const nav = /^Please navigate to: (\S+)$/.exec(line);
                if (nav) {
                    browsing.push(browse(nav[1]).catch(reject));
                } else if (line && !line.startsWith('[mcp-inspector]')) {
                    note('inspector', line);
                }
            };
            child.on('error', e => {
                clearTimeout(timer);
                reject(e);
            });
            child.on('close', async (code, signal) => {
                clearTimeout(timer);
                await Promise.all(browsing);
                if (code !== 0) {
                    reject(new Error(`the Inspector's ${tool} run exited with ${code ?? signal}\n${stderr}${stdout}`));
                    return;
                }
                let out;
                try {
                    out = JSON.parse(stdout);
                } catch (e) {
                    reject(new Error(`the Inspector's ${tool} run printed no JSON result: ${e.message}\n${stdout}`));
                    return;
                }
                resolve(out.result);
            });
        });

    const text = r => (r?.content ?? []).filter(c => c.type === 'text').map(c => c.text).join('\n');
    const call = async (tool, args = {}) => {
        const from = wire.events.length;
        let result;
        try {
            result = await run(tool, args);
        } finally {
            flush();
        }
        const calls = wire.events.slice(from).filter(e => e.from === 'inspector' && e.rpc === 'tools/call' && e.tool === tool);
        return { result, calls, events: wire.events.slice(from) };
    };

    if (mode === 'anonymous') {
        // The public tool, before any token exists.
        const about = await call('about');
        const answered = about.calls.at(-1);
        const tokens = wire.events.filter(e => e.grantType);
        if (about.result?.isError || answered?.status !== 200 || answered.withToken || tokens.length > 0) {
            fail(`about was expected to answer 200 without a token: ${JSON.stringify(answered)} ${text(about.result)}`);
        }
        say(`about: ${answered.status} without a token: ${text(about.result)}`);
    }
    const who = await call('whoami');
    say(`whoami: ${text(who.result)}`);
    if (who.result?.isError) fail('whoami failed');
    if (mode === 'default-scope') {
        say('done');
        return;
    }
    const wrote = await call('write_file', { path: WRITE_PATH, content });
    if (!wrote.events.some(e => e.status === 403)) fail('write_file was expected to meet a 403 insufficient_scope first');
    say(`write_file: ${text(wrote.result)}`);
    if (wrote.result?.isError) fail('write_file failed after the step-up');
    const read = await call('read_file', { path: WRITE_PATH });
    say(`read_file: ${text(read.result)}`);
    if (read.result?.isError || text(read.result) !== content) fail('read_file did not return what was written');
    say('done');
}

if ((process.argv.length !== 4 && process.argv.length !== 5) || !MODES.includes(process.argv[2])) {
    console.error(`usage: node journey.mjs ${MODES.join('|')} MCP_URL [CONTENT]`);
    process.exit(2);
}
main(process.argv[2], process.argv[3], process.argv[4] ?? DEFAULT_CONTENT).then(
    () => process.exit(0),
    e => fail(e?.stack ?? String(e))
);
