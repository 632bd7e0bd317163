// A real OAuth 2 / OpenID Connect server for consent-broker's tests, on oidc-provider.
//
// Usage: node server.mjs '<json options>'
//   host       loopback address to listen on (port chosen by the OS)
//   port       fixed port instead (deploy/compose.yaml runs it as an example IdP)
//   issuer     issuer to announce instead of http://<host>:<port> (e.g. behind a DNS alias)
//   clients    oidc-provider client metadata (client_id, client_secret, redirect_uris, …)
//   resource   optional RFC 8707 resource indicator this server issues tokens for
//   scopes     scopes of that resource server ("api:read api:write")
//   admins     account ids whose `groups` claim contains "broker-admins"
//   groups     { account id: [more groups] } added to that account's `groups` claim
//   accessTokenTtl  seconds (default 3600)
//   accessTokenFormat  'opaque' (default) or 'jwt': the format of access tokens for `resource`
//              (JWT, RS256 over the server's JWKS, `aud` = the resource: MCP authorization)
// Prints one JSON line {"issuer": "..."} when ready. Logins go through the built-in
// development interaction pages: any login name, any password.
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const options = JSON.parse(process.argv[2] ?? '{}');
const host = options.host ?? '127.0.0.1';
const admins = new Set(options.admins ?? []);
const extraGroups = options.groups ?? {};
const resourceScopes = options.scopes ?? 'api:read api:write';
const stats = { tokenRequests: 0, refreshes: 0 };

const server = http.createServer();
server.listen(options.port ?? 0, host, () => {
  const { port } = server.address();
  const issuer = options.issuer ?? `http://${host}:${port}`;
  const provider = new Provider(issuer, {
    clients: options.clients ?? [],
    cookies: { keys: ['consent-broker-test-idp-cookie-key'] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', ...resourceScopes.split(' ')],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    conformIdTokenClaims: false,
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: `${id}@example.com`,
            email_verified: true,
            name: id,
            groups: [...(admins.has(id) ? ['staff', 'broker-admins'] : ['staff']), ...(extraGroups[id] ?? [])],
          };
        },
      };
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    pkce: { required: () => true },
    ttl: { AccessToken: options.accessTokenTtl ?? 3600 },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: Boolean(options.resource),
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== options.resource) throw new errors.InvalidTarget();
          return { scope: resourceScopes, audience: indicator, accessTokenTTL: options.accessTokenTtl ?? 3600, accessTokenFormat: options.accessTokenFormat ?? 'opaque' };
        },
      },
    },
  });
  provider.proxy = false;
  provider.on('grant.success', (ctx) => {
    stats.tokenRequests += 1;
    if (ctx.oidc.params?.grant_type === 'refresh_token') stats.refreshes += 1;
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url === '/__stats') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(stats));
      return;
    }
    callback(req, res);
  });
  console.log(JSON.stringify({ issuer }));
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
// End with the test process: stdin closes when the parent goes away.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
