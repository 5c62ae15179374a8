// Peer MCP server on the official MCP TypeScript SDK v2 (@modelcontextprotocol/server
// with its Express and Node adapters), for the load benchmark.
//
// Stateless streamable HTTP with JSON responses at /mcp (a new McpServer and
// NodeStreamableHTTPServerTransport per request), one `echo` tool. The bearer token
// is verified by the Express adapter's requireBearerAuth with a jose verifier; the
// `files:read` scope is checked per operation by the echo tool's scopeChallenge
// (requireScopes), which the transport answers with 403 insufficient_scope before
// dispatch. Contract: benches/peers/README.md.
import { McpServer, OAuthError, OAuthErrorCode, requireScopes } from '@modelcontextprotocol/server';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { createMcpExpressApp, requireBearerAuth } from '@modelcontextprotocol/express';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as z from 'zod';

function env(name) {
    const value = process.env[name];
    if (!value) {
        console.error(`node-v2 peer: ${name} is not set`);
        process.exit(2);
    }
    return value;
}

const PORT = Number(env('PEER_PORT'));
const ISSUER = env('PEER_ISSUER');
const JWKS_URI = env('PEER_JWKS_URI');
const AUDIENCE = env('PEER_AUDIENCE');
const REQUIRED_SCOPE = 'files:read';

// Fetched on first use and cached by jose (an unknown `kid` refetches at most
// once per cooldown).
const jwks = createRemoteJWKSet(new URL(JWKS_URI), { cacheMaxAge: 24 * 60 * 60 * 1000 });

const verifier = {
    async verifyAccessToken(token) {
        let payload;
        try {
            ({ payload } = await jwtVerify(token, jwks, {
                issuer: ISSUER,
                audience: AUDIENCE,
                algorithms: ['ES256'],
                requiredClaims: ['exp']
            }));
        } catch {
            throw new OAuthError(OAuthErrorCode.InvalidToken, 'Invalid token');
        }
        return {
            token,
            clientId: typeof payload.client_id === 'string' ? payload.client_id : '',
            // Space-separated `scope`; the echo tool's scopeChallenge checks it (403).
            scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
            expiresAt: payload.exp,
            resource: new URL(AUDIENCE),
            extra: { sub: payload.sub, iss: payload.iss }
        };
    }
};

function getServer() {
    const server = new McpServer({ name: 'peer', version: '1.0.0' });
    server.registerTool(
        'echo',
        {
            description: 'Echo the text back',
            inputSchema: z.object({ text: z.string() }),
            scopeChallenge: requireScopes(REQUIRED_SCOPE)
        },
        async ({ text }) => ({ content: [{ type: 'text', text }] })
    );
    return server;
}

const app = createMcpExpressApp({ host: '127.0.0.1' });
const auth = requireBearerAuth({ verifier });

app.post('/mcp', auth, async (req, res) => {
    const server = getServer();
    try {
        const transport = new NodeStreamableHTTPServerTransport({
            sessionIdGenerator: undefined,
            enableJsonResponse: true
        });
        res.on('close', () => {
            transport.close();
            server.close();
        });
        await server.connect(transport);
        await transport.handleRequest(req, res, req.body);
    } catch {
        if (!res.headersSent) {
            res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
        }
    }
});

const methodNotAllowed = (_req, res) => {
    res.status(405).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
};
app.get('/mcp', auth, methodNotAllowed);
app.delete('/mcp', auth, methodNotAllowed);

app.listen(PORT, '127.0.0.1', error => {
    if (error) {
        console.error(`node-v2 peer: cannot listen on 127.0.0.1:${PORT}: ${error.message}`);
        process.exit(1);
    }
    process.stdout.write(`ready http://127.0.0.1:${PORT}/mcp\n`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
