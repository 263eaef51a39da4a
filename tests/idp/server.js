// Local OpenID provider for Keylink's integration tests and demos.
//
// Built on oidc-provider with one public native client ("keylink-demo").
// By default every login/consent interaction is completed automatically so a
// scripted user agent (user-agent.js) can drive the authorization code flow
// and, as the person on another device, the device flow (RFC 8628); with
// --interactive the provider's own development login pages are used.
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

import Provider, { errors } from 'oidc-provider';

// oidc-provider prints its "NOTICE" messages with console.info, i.e. to
// stdout (only at run time, never while being imported). Stdout is reserved
// for the handshake line, so route the console's stdout methods to stderr.
console.log = console.error;
console.info = console.error;

const CLIENT_ID = 'keylink-demo';
// The provider ids configured against this provider (tests, the demo, the benchmarks).
const PROVIDER_IDS = ['demo', 'demo-loopback', 'demo-b', 'other'];
// The URL schemes of the apps the tests play: Keylink's own and an embedding app's.
const APP_SCHEMES = ['dev.keylink', 'com.example.notes'];
const DEFAULT_LOGIN = 'alice';
const LOGIN_PATTERN = /^[a-z0-9_-]{1,32}$/;
const INTERACTION_PATH = /^\/interaction\/([^/]+)$/;
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function log(message) {
  process.stderr.write(`[test-idp] ${message}\n`);
}

function usage(message) {
  process.stderr.write(
    `${message}\n`
      + 'usage: node server.js [--port N] [--tls-cert PEM --tls-key PEM] '
      + '[--interactive] [--access-ttl SECS]\n'
      + '                      [--device-ttl SECS] [--device-interval SECS] '
      + '[--device-poll-interval SECS]\n'
      + '                      [--confidential-client ID:SECRET] [--api-resources]\n',
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
        'device-ttl': { type: 'string', default: '600' },
        'device-interval': { type: 'string', default: '5' },
        'device-poll-interval': { type: 'string' },
        'confidential-client': { type: 'string' },
        'api-resources': { type: 'boolean', default: false },
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

  let confidentialClient;
  if (values['confidential-client'] !== undefined) {
    const match = /^([A-Za-z0-9._-]+):([\x21-\x7e]+)$/.exec(values['confidential-client']);
    if (!match || match[1] === CLIENT_ID) {
      usage(`--confidential-client must be ID:SECRET with an ID other than ${CLIENT_ID}`);
    }
    confidentialClient = { clientId: match[1], clientSecret: match[2] };
  }

  return {
    port: parseInteger('port', values.port, 0, 65535),
    tls: values['tls-cert']
      ? { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) }
      : undefined,
    interactive: values.interactive,
    accessTtl: parseInteger('access-ttl', values['access-ttl'], 1, 10 * 365 * 24 * 3600),
    deviceTtl: parseInteger('device-ttl', values['device-ttl'], 1, 24 * 3600),
    deviceInterval: parseInteger('device-interval', values['device-interval'], 0, 3600),
    devicePollInterval: values['device-poll-interval'] === undefined
      ? undefined
      : parseInteger('device-poll-interval', values['device-poll-interval'], 0, 3600),
    confidentialClient,
    apiResources: values['api-resources'],
  };
}

// ---------------------------------------------------------------------------
// Two test APIs (RFC 8707 resource indicators), with --api-resources: a refresh with
// `resource` gets a JWT access token whose `aud` is that API, limited to its scope.

const API_RESOURCES = {
  'https://api-a.example.test': 'calendar',
  'https://api-b.example.test': 'files',
};

function resourceIndicators(options) {
  if (!options.apiResources) {
    // As before: a `resource` parameter is refused (invalid_target).
    return { enabled: true };
  }
  return {
    enabled: true,
    // The client is preauthorised for both test APIs: an authorization request that names
    // none names both (RFC 8707 §2.1), so the grant and its refresh tokens may serve them. A
    // token request without `resource` stays the userinfo token it always was.
    defaultResource: async (ctx, _client, oneOf) => (
      !oneOf && ctx.oidc.route === 'authorization' ? Object.keys(API_RESOURCES) : undefined
    ),
    useGrantedResource: async () => false,
    getResourceServerInfo: async (_ctx, resource) => {
      const scope = API_RESOURCES[resource];
      if (!scope) {
        throw new errors.InvalidTarget();
      }
      return {
        scope,
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      };
    },
  };
}


// ---------------------------------------------------------------------------
// Accounts: any login name is a valid account; its claims derive from it.

async function findAccount(_ctx, sub) {
  // A name signs in as <name>@example.test. The interactive login page prefills the
  // login_hint a reconnect sends, which is already an email: it is taken as given.
  const local = sub.includes('@') ? sub.slice(0, sub.indexOf('@')) : sub;
  return {
    accountId: sub,
    // oidc-provider filters this set down to what the granted scopes allow.
    async claims() {
      return {
        sub,
        name: local.charAt(0).toUpperCase() + local.slice(1),
        email: sub.includes('@') ? sub : `${sub}@example.test`,
        email_verified: true,
      };
    },
  };
}

// ---------------------------------------------------------------------------
// Request counters exposed at GET /__test/stats.

function emptyStats() {
  return {
    token_requests: { authorization_code: 0, refresh_token: 0, [DEVICE_CODE_GRANT]: 0 },
    token_errors: 0,
    revocations: 0,
    userinfo: 0,
    device_authorizations: 0,
    device_slow_downs: 0,
    // Login pages shown (automated mode): a sign-in without a provider session shows one,
    // one within a session does not.
    logins: 0,
    // Sessions ended through the end_session_endpoint (RP-Initiated Logout).
    sign_outs: 0,
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
    case 'device_authorization':
      stats.device_authorizations += 1;
      break;
    case 'userinfo':
      stats.userinfo += 1;
      break;
    case 'end_session_confirm':
      // Confirmed ("logout=yes") and answered with a redirect, not an error page.
      if (oidc.params?.logout && ctx.status >= 300 && ctx.status < 400) {
        stats.sign_outs += 1;
      }
      break;
    default:
      break;
  }
}

// POST /__test/introspect with token=<access token>: whether the provider
// knows it and the scope it carries, so a test can check what a token really
// allows (not what the client stored). Not counted in the stats.
function testIntrospection(provider) {
  return async function introspect(ctx, next) {
    if (ctx.path !== '/__test/introspect') {
      return next();
    }
    if (ctx.method !== 'POST') {
      ctx.status = 405;
      ctx.set('Allow', 'POST');
      ctx.body = { error: 'method_not_allowed' };
      return undefined;
    }
    const token = new URLSearchParams(await readRequestBody(ctx.req)).get('token') ?? '';
    const found = token ? await provider.AccessToken.find(token) : undefined;
    ctx.body = found ? { active: true, scope: found.scope ?? '' } : { active: false };
    return undefined;
  };
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
// Device flow (RFC 8628) additions oidc-provider does not make itself: the
// `interval` in device authorization responses, and (with
// --device-poll-interval) answering `slow_down` to polls that come too soon.

async function readRequestBody(req) {
  const chunks = [];
  let size = 0;
  // destroyOnReturn: false, or the iterator would destroy the request (and
  // with it the socket the answer goes out on).
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    size += chunk.length;
    if (size > 64 * 1024) {
      throw Object.assign(new Error('request body too large'), { status: 413 });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function deviceFlowExtras({ deviceInterval, devicePollInterval }) {
  // device_code -> Date.now() of its issue or of its last poll. Device codes
  // are secrets: they are only ever map keys here, never logged.
  const lastPoll = new Map();

  return async function deviceExtras(ctx, next) {
    const paced = devicePollInterval !== undefined
      && ctx.method === 'POST'
      && ctx.path === '/token'
      && ctx.is('application/x-www-form-urlencoded');
    if (paced) {
      // The body must be read to see whether this is a device poll. oidc-provider
      // then takes the body from req.body (it warns once that one was already
      // read; that is expected here).
      const raw = await readRequestBody(ctx.req);
      ctx.req.body = raw;
      const params = new URLSearchParams(raw);
      const code = params.get('device_code');
      if (params.get('grant_type') === DEVICE_CODE_GRANT && code && lastPoll.has(code)) {
        const now = Date.now();
        const elapsed = now - lastPoll.get(code);
        lastPoll.set(code, now);
        if (elapsed < devicePollInterval * 1000) {
          // Answered here, before oidc-provider sees it, so the counters that
          // recordRequest keeps for the provider's answers are kept here.
          stats.token_requests[DEVICE_CODE_GRANT] += 1;
          stats.token_errors += 1;
          stats.device_slow_downs += 1;
          log(`slow_down: a device poll came ${elapsed} ms after the previous one`);
          ctx.status = 400;
          ctx.set('Cache-Control', 'no-store');
          ctx.body = {
            error: 'slow_down',
            error_description: `poll at most every ${devicePollInterval} seconds`,
          };
          return;
        }
      }
    }

    await next();

    if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body?.device_code) {
      ctx.body = { ...ctx.body, interval: deviceInterval };
      if (devicePollInterval !== undefined) {
        lastPoll.set(ctx.body.device_code, Date.now());
      }
    }
  };
}

// The person's pages of the device flow, replacing oidc-provider's defaults.
// Usable by a human (--interactive), and marked for user-agent.js:
// data-device-page is input, confirm or success; data-device-error says why
// the input page is shown again.

function htmlEscape(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function devicePage(kind, title, content, error) {
  const errorAttribute = error ? ` data-device-error="${htmlEscape(error)}"` : '';
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>${title}</title></head>
<body data-device-page="${kind}"${errorAttribute}>
<h1>${title}</h1>
${content}
</body>
</html>`;
}

const USER_CODE_ERRORS = {
  NoCodeError: ['no_code', 'Enter the code shown on your device.'],
  NotFoundError: ['not_found', 'That code is not valid; check it and try again.'],
  ExpiredError: ['expired', 'That code has expired; start again on your device.'],
  AlreadyUsedError: ['already_used', 'That code has already been used.'],
  AbortedError: ['aborted', 'The sign-in was cancelled.'],
};

async function userCodeInputSource(ctx, form, _out, err) {
  let error;
  let message = 'Enter the code shown on your device.';
  if (err) {
    [error, message] = USER_CODE_ERRORS[err.name]
      ?? [err.error ?? 'error', 'Something went wrong; start again on your device.'];
  }
  ctx.type = 'html';
  ctx.body = devicePage('input', 'Sign in a device', `<p>${htmlEscape(message)}</p>
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`, error);
}

async function userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
  ctx.type = 'html';
  ctx.body = devicePage('confirm', 'Confirm the device', `<p><strong>${htmlEscape(client.clientId)}</strong>
asks to sign in with the code</p>
<p><code>${htmlEscape(userCode)}</code></p>
<p>Continue only if your device shows this code.</p>
${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
}

async function deviceSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = devicePage('success', 'Device signed in', '<p>You can close this page and return to your device.</p>');
}

// The sign-out pages (RP-Initiated Logout), replacing oidc-provider's defaults:
// usable by a human, and marked for user-agent.js with data-logout-page (confirm
// or success). The form oidc-provider passes in carries the xsrf value.

async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Sign out</title></head>
<body data-logout-page="confirm">
<h1>Sign out of ${htmlEscape(ctx.host)}?</h1>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>
</body>
</html>`;
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Signed out</title></head>
<body data-logout-page="success">
<h1>You are signed out</h1>
</body>
</html>`;
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

// The interactive login page (oidc-provider's development page) prefills the
// login_hint, which Keylink sends as the account's email on a reconnect:
// <name>@example.test signs in as <name>, whose email that is, as a real
// provider resolves a login by email. Other logins are the account's name.
function interactiveLogin(provider) {
  return async function login(ctx, next) {
    const match = ctx.method === 'POST' && INTERACTION_PATH.exec(ctx.path);
    if (!match || !ctx.is('application/x-www-form-urlencoded')) {
      return next();
    }
    const chunks = [];
    for await (const chunk of ctx.req) {
      chunks.push(chunk);
      if (chunks.reduce((n, c) => n + c.length, 0) > 8192) ctx.throw(413);
    }
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== match[1]) ctx.throw(400, 'interaction cookie does not match the URL');
    let result;
    let merge = false;
    if (form.get('prompt') === 'login' && details.prompt.name === 'login') {
      const typed = (form.get('login') || '').trim().toLowerCase();
      const login = typed.endsWith('@example.test') ? typed.slice(0, -'@example.test'.length) : typed;
      if (!LOGIN_PATTERN.test(login)) {
        ctx.status = 400;
        ctx.body = 'Sign in with a name of letters, digits, - and _ (or <name>@example.test).';
        return undefined;
      }
      result = { login: { accountId: login } };
    } else if (form.get('prompt') === 'consent' && details.prompt.name === 'consent') {
      result = await completeConsent(provider, details);
      merge = true;
    } else {
      ctx.throw(400, 'unexpected prompt');
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.respond = false;
    return undefined;
  };
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
          stats.logins += 1;
          result = { login: { accountId: login } };
          break;
        }
        case 'consent': {
          // x-test-refuse-scopes plays a person who declines some of what is asked: a
          // consent that would grant any of these scopes ends with access_denied.
          const refused = (ctx.get('x-test-refuse-scopes') || '').split(' ').filter(Boolean);
          const asked = details.prompt.details.missingOIDCScope ?? [];
          const declined = asked.filter((scope) => refused.includes(scope));
          result = declined.length > 0
            ? { error: 'access_denied', error_description: `The person declined ${declined.join(' ')}.` }
            : await completeConsent(provider, details);
          break;
        }
        default:
          throw Object.assign(new Error(`unsupported prompt ${details.prompt.name}`), { status: 501 });
      }

      // Stores the result and answers 303 -> /auth/:uid directly on the raw
      // response, so Koa must not try to write a response of its own. A
      // consent keeps the login submitted just before it: with prompt=login
      // (a reconnect) the provider asks again unless this request's login is
      // still part of the result.
      await provider.interactionFinished(ctx.req, ctx.res, result, {
        mergeWithLastSubmission: details.prompt.name === 'consent',
      });
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

function providerConfiguration({
  interactive, accessTtl, deviceTtl, confidentialClient, apiResources,
}) {
  // A fresh signing key per run: nothing outlives the process anyway.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };

  return {
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
        response_types: ['code'],
        // Keylink's redirect URIs differ per provider id (RFC 9700 section
        // 4.4.2), so each provider id the tests and the demo configure is
        // registered, for both transports. For native clients oidc-provider
        // ignores the port when comparing http loopback redirect URIs
        // (RFC 8252 section 7.3): http://127.0.0.1:<any port>/callback/<id>.
        redirect_uris: PROVIDER_IDS.flatMap((id) => [
          ...APP_SCHEMES.map((scheme) => `${scheme}:/callback/${id}`),
          `http://127.0.0.1/callback/${id}`,
        ]),
        // Where the provider confirms a sign-out (RP-Initiated Logout 1.0), compared
        // exactly: <scheme>:/signed-out/<provider id>.
        post_logout_redirect_uris: PROVIDER_IDS.flatMap((id) => (
          APP_SCHEMES.map((scheme) => `${scheme}:/signed-out/${id}`)
        )),
      },
      // oidc-agent authenticates at the token endpoint with HTTP Basic even
      // for a public client (an empty secret, which oidc-provider refuses), so
      // the benchmark that measures it registers a client with a secret.
      ...(confidentialClient ? [{
        client_id: confidentialClient.clientId,
        client_secret: confidentialClient.clientSecret,
        application_type: 'native',
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['http://127.0.0.1/callback'],
      }] : []),
    ],
    // Only the authorization code flow is offered (no implicit/hybrid), and
    // the device flow.
    responseTypes: ['code'],
    jwks: { keys: [signingKey] },
    cookies: { keys: ['keylink-test-idp-cookie-key'] },
    // "calendar" stands for an API scope an app asks for later (incremental
    // consent); nothing asks for it unless a test does.
    // With --api-resources "files" is one too, the scope of the second test API.
    scopes: ['openid', 'offline_access', 'calendar', ...(apiResources ? ['files'] : [])],
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
      resourceIndicators: resourceIndicators({ apiResources }),
      devInteractions: { enabled: interactive },
      revocation: {
        enabled: true,
        // The only client is public: it may revoke its own tokens only.
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      deviceFlow: {
        enabled: true,
        userCodeInputSource,
        userCodeConfirmSource,
        successSource: deviceSuccessSource,
      },
      // end_session_endpoint: the person confirms on logoutSource's page, then the provider
      // redirects to the client's post_logout_redirect_uri with its state.
      rpInitiatedLogout: {
        enabled: true,
        logoutSource,
        postLogoutSuccessSource,
      },
    },
    // Refresh tokens for every code exchange and device grant, without
    // requiring the client to ask for offline_access/prompt=consent.
    issueRefreshToken: async (_ctx, client, source) => (
      client.grantTypeAllowed('refresh_token')
      && (source.kind === 'AuthorizationCode' || source.kind === 'DeviceCode')
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
      DeviceCode: deviceTtl,
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
  const events = [
    'grant.error', 'authorization.error', 'userinfo.error', 'revocation.error',
    'device_authorization.error', 'code_verification.error', 'device_resume.error',
    'end_session.error', 'end_session_confirm.error',
  ];
  for (const event of events) {
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
  provider.use(testIntrospection(provider));
  provider.use(testControl);
  provider.use(deviceFlowExtras(options));
  if (!options.interactive) {
    provider.use(automatedInteractions(provider));
  } else {
    provider.use(interactiveLogin(provider));
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
