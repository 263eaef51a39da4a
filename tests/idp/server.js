// Local OpenID provider for Keylink's integration tests and demos.
//
// Built on oidc-provider with one public native client ("keylink-demo").
// By default every login/consent interaction is completed automatically so a
// scripted user agent (user-agent.js) can drive the authorization code flow;
// with --interactive the provider's own development login pages are used.
//
// Handshake: once listening, exactly one JSON line is written to stdout,
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// and nothing else is ever written there. All logs go to stderr.
//
// See README.md for the command line and the /__test control endpoints.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

// oidc-provider prints its "NOTICE" messages with console.info, i.e. to
// stdout (only at run time, never while being imported). Stdout is reserved
// for the handshake line, so route the console's stdout methods to stderr.
console.log = console.error;
console.info = console.error;

const CLIENT_ID = 'keylink-demo';
const DEFAULT_LOGIN = 'alice';
const LOGIN_PATTERN = /^[a-z0-9_-]{1,32}$/;
const INTERACTION_PATH = /^\/interaction\/([^/]+)$/;

function log(message) {
  process.stderr.write(`[test-idp] ${message}\n`);
}

function usage(message) {
  process.stderr.write(
    `${message}\n`
      + 'usage: node server.js [--port N] [--tls-cert PEM --tls-key PEM] '
      + '[--interactive] [--access-ttl SECS]\n',
  );
  process.exit(2);
}

function parseInteger(name, value, min, max) {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    usage(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseCommandLine() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '0' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        interactive: { type: 'boolean', default: false },
        'access-ttl': { type: 'string', default: '3600' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage(err.message);
  }

  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) {
    usage('--tls-cert and --tls-key must be given together');
  }

  return {
    port: parseInteger('port', values.port, 0, 65535),
    tls: values['tls-cert']
      ? { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) }
      : undefined,
    interactive: values.interactive,
    accessTtl: parseInteger('access-ttl', values['access-ttl'], 1, 10 * 365 * 24 * 3600),
  };
}

// ---------------------------------------------------------------------------
// Accounts: any login name is a valid account; its claims derive from it.

async function findAccount(_ctx, sub) {
  return {
    accountId: sub,
    // oidc-provider filters this set down to what the granted scopes allow.
    async claims() {
      return {
        sub,
        name: sub.charAt(0).toUpperCase() + sub.slice(1),
        email: `${sub}@example.test`,
        email_verified: true,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// Request counters exposed at GET /__test/stats.

function emptyStats() {
  return {
    token_requests: { authorization_code: 0, refresh_token: 0 },
    token_errors: 0,
    revocations: 0,
    userinfo: 0,
  };
}

let stats = emptyStats();

// Counts requests by the route oidc-provider matched. It runs after the
// provider has handled the request so failed requests are counted too (the
// provider turns its errors into responses, so they do not propagate here).
function recordRequest(ctx) {
  // ctx.oidc only exists for requests that matched one of the provider's routes.
  const oidc = ctx.oidc;
  switch (oidc?.route) {
    case 'token': {
      // params is set once the form body is parsed; body covers requests that
      // failed between the two; neither exists if the body was unparsable.
      const grantType = oidc.params?.grant_type ?? oidc.body?.grant_type ?? 'unknown';
      const key = typeof grantType === 'string' ? grantType : 'unknown';
      stats.token_requests[key] = (stats.token_requests[key] ?? 0) + 1;
      if (ctx.status >= 400) {
        stats.token_errors += 1;
      }
      break;
    }
    case 'revocation':
      stats.revocations += 1;
      break;
    case 'userinfo':
      stats.userinfo += 1;
      break;
    default:
      break;
  }
}

// Outermost middleware: serves /__test/* itself and counts everything else.
async function testControl(ctx, next) {
  if (ctx.path.startsWith('/__test/')) {
    const routes = {
      '/__test/stats': ['GET', () => stats],
      '/__test/reset': ['POST', () => { stats = emptyStats(); return stats; }],
    };
    const route = routes[ctx.path];
    if (!route) {
      ctx.status = 404;
      ctx.body = { error: 'not_found' };
    } else if (ctx.method !== route[0]) {
      ctx.status = 405;
      ctx.set('Allow', route[0]);
      ctx.body = { error: 'method_not_allowed' };
    } else {
      ctx.body = route[1]();
    }
    return;
  }

  try {
    await next();
  } finally {
    recordRequest(ctx);
  }
}

// ---------------------------------------------------------------------------
// Automated interactions (default mode). The provider redirects the user
// agent to /interaction/:uid whenever it needs a login or a consent; this
// completes them without any page and redirects back to /auth/:uid.

async function completeConsent(provider, details) {
  const { grantId, session, params, prompt } = details;

  // A grant from an earlier authorization of this account+client is extended;
  // otherwise a new one is created. Every missing item the provider lists is
  // granted: this test IdP always consents.
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });

  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
  if (missingOIDCScope) {
    grant.addOIDCScope(missingOIDCScope.join(' '));
  }
  if (missingOIDCClaims) {
    grant.addOIDCClaims(missingOIDCClaims);
  }
  if (missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }

  return { consent: { grantId: await grant.save() } };
}

function automatedInteractions(provider) {
  return async function interactions(ctx, next) {
    const match = ctx.method === 'GET' && INTERACTION_PATH.exec(ctx.path);
    if (!match) {
      return next();
    }

    try {
      // Looks the interaction up from its (signed) cookie; throws
      // SessionNotFound when the cookie is missing or stale.
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== match[1]) {
        throw Object.assign(new Error('interaction cookie does not match the URL'), { status: 400 });
      }

      let result;
      switch (details.prompt.name) {
        case 'login': {
          const login = ctx.get('x-test-login') || DEFAULT_LOGIN;
          if (!LOGIN_PATTERN.test(login)) {
            ctx.status = 400;
            ctx.body = { error: 'invalid_request', error_description: 'x-test-login must match [a-z0-9_-]{1,32}' };
            return undefined;
          }
          result = { login: { accountId: login } };
          break;
        }
        case 'consent':
          result = await completeConsent(provider, details);
          break;
        default:
          throw Object.assign(new Error(`unsupported prompt ${details.prompt.name}`), { status: 501 });
      }

      // Stores the result and answers 303 -> /auth/:uid directly on the raw
      // response, so Koa must not try to write a response of its own.
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
      ctx.respond = false;
    } catch (err) {
      const status = err.statusCode ?? err.status ?? 500;
      log(`interaction failed: ${err.error ?? err.name}: ${err.error_description ?? err.message}`);
      ctx.status = status;
      ctx.body = {
        error: err.error ?? (status >= 500 ? 'server_error' : 'invalid_request'),
        error_description: err.error_description ?? err.message,
      };
    }
    return undefined;
  };
}

// ---------------------------------------------------------------------------
// Provider configuration.

function providerConfiguration({ interactive, accessTtl }) {
  // A fresh signing key per run: nothing outlives the process anyway.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };

  return {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        // For native clients oidc-provider ignores the port when comparing
        // http loopback redirect URIs (RFC 8252 section 7.3), so
        // http://127.0.0.1:<any port>/callback is accepted.
        redirect_uris: ['dev.keylink:/callback', 'http://127.0.0.1/callback'],
      },
    ],
    // Only the authorization code flow is offered (no implicit/hybrid).
    responseTypes: ['code'],
    jwks: { keys: [signingKey] },
    cookies: { keys: ['keylink-test-idp-cookie-key'] },
    scopes: ['openid', 'offline_access'],
    // Standard claims per scope; "profile" and "email" become supported scopes.
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    findAccount,
    // Errors that cannot be redirected to the client (bad client_id or
    // redirect_uri, lost interaction...) are shown to the user agent. Plain
    // JSON keeps them readable in the excerpt user-agent.js prints.
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
    features: {
      devInteractions: { enabled: interactive },
      revocation: {
        enabled: true,
        // The only client is public: it may revoke its own tokens only.
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
    },
    // Refresh tokens for every code exchange, without requiring the client to
    // ask for offline_access/prompt=consent.
    issueRefreshToken: async (_ctx, client, source) => (
      client.grantTypeAllowed('refresh_token') && source.kind === 'AuthorizationCode'
    ),
    // oidc-provider drops offline_access from the granted scope unless the
    // request also has prompt=consent, and by default binds tokens issued
    // without offline_access to the browser session. Tokens here outlive the
    // (scripted) browser session regardless, like offline access.
    expiresWithSession: async () => false,
    // Every refresh returns a new refresh token; presenting a consumed one
    // revokes the whole grant (oidc-provider's replay detection).
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTtl,
      IdToken: 3600,
      AuthorizationCode: 60,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
  };
}

function describeError(err) {
  // Token endpoint errors all say "invalid_grant"; the reason is error_detail.
  const parts = [err?.error ?? err?.name ?? 'error'];
  if (err?.error_description) parts.push(err.error_description);
  if (err?.error_detail) parts.push(err.error_detail);
  if (!err?.error && err?.message) parts.push(err.message);
  return parts.join(': ');
}

function logProviderErrors(provider) {
  // Error events carry only error codes and fixed descriptions, never token
  // values, so they are safe to log.
  for (const event of ['grant.error', 'authorization.error', 'userinfo.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => log(`${event} ${ctx.method} ${ctx.path}: ${describeError(err)}`));
  }
  provider.on('server_error', (ctx, err) => {
    log(`server_error ${ctx.method} ${ctx.path}: ${describeError(err)}`);
    if (err?.stack) log(err.stack);
  });
}

// ---------------------------------------------------------------------------

async function main() {
  const options = parseCommandLine();

  const server = options.tls ? https.createServer(options.tls) : http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', resolve);
  });

  // The issuer must contain the real port, known only after listening.
  const { port } = server.address();
  const issuer = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  const provider = new Provider(issuer, providerConfiguration(options));
  logProviderErrors(provider);
  // provider.use() inserts middleware ahead of the provider's own routes, in
  // call order.
  provider.use(testControl);
  if (!options.interactive) {
    provider.use(automatedInteractions(provider));
  }
  server.on('request', provider.callback());

  const shutdown = (signal) => {
    log(`${signal} received, shutting down`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);

  log(`listening on ${issuer}${options.interactive ? ' (interactive)' : ''}`);
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
}

main().catch((err) => {
  log(`fatal: ${err.stack ?? err}`);
  process.exit(1);
});
