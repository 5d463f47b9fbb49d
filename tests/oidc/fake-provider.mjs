// A minimal OpenID provider on 127.0.0.1 that issues deliberately broken ID tokens, for the
// ID token validation tests of lambda-auth.
//
// Usage: node fake-provider.mjs [PORT]   (or PORT=<port> node fake-provider.mjs)
//
// The issuer is http://127.0.0.1:<port>. When the server is listening, this prints
// `ready <issuer>` on stdout.
//
// Endpoints:
//   GET  /.well-known/openid-configuration  discovery document
//   GET  /jwks                              one RS256 public key
//   GET  /authorize                         redirects (302) at once to redirect_uri with a code
//                                           and the request's state, without a login page
//   POST /token                             authorization_code grant; checks the PKCE verifier
//   POST /mode                              sets the mode, body {"mode": "<mode>"}
//   GET  /mode                              returns {"mode": "<mode>"}
//
// The mode chooses how the next ID tokens misbehave. It starts as `ok`, or as the MODE
// environment variable when that is set:
//   ok             a valid ID token: sub fake-user, email fake@example.com, email_verified true
//   wrong_aud      aud is another client's id
//   wrong_iss      iss is another issuer
//   expired        exp lies in the past
//   bad_signature  signed with a key that is not in the JWKS, under the JWKS key's kid
//   wrong_nonce    nonce differs from the authorization request's nonce
//   access_denied  /authorize redirects with error=access_denied instead of a code
// The mode is global to the server, and /authorize and /token read it when they run. Tests
// that share one instance must therefore not run at the same time: each sets the mode and
// completes its whole flow before the next one starts.
//
// Client authentication: any client_id is accepted, with any secret, by client_secret_basic
// or client_secret_post, because these tests check the ID token and not the client secret.
// Only redirect_uri values on 127.0.0.1 or localhost are accepted.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import { exportJWK, generateKeyPair, SignJWT } from 'jose';

const MODES = new Set([
  'ok', 'wrong_aud', 'wrong_iss', 'expired', 'bad_signature', 'wrong_nonce', 'access_denied',
]);
const ID_TOKEN_TTL_SECONDS = 300;
const CODE_TTL_MILLISECONDS = 60_000;
const MAX_BODY_BYTES = 64 * 1024;

const port = parsePort(process.argv[2] ?? process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

let mode = process.env.MODE || 'ok';
if (!MODES.has(mode)) {
  console.error(`fake-provider.mjs: invalid MODE '${mode}': expected one of ${[...MODES].join(', ')}`);
  process.exit(2);
}

const KID = 'fake-provider-key';
const signingKey = await generateKeyPair('RS256', { extractable: true });
// The key for `bad_signature`: it signs under KID too, but its public half is never published.
const unpublishedKey = await generateKeyPair('RS256', { extractable: true });
const publicJwk = { ...(await exportJWK(signingKey.publicKey)), kid: KID, alg: 'RS256', use: 'sig' };

// Pending authorization codes: code -> { clientId, redirectUri, nonce, codeChallenge, expiresAt }.
const codes = new Map();

function parsePort(value) {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`fake-provider.mjs: invalid or missing port '${value ?? ''}': pass it as the first argument or in PORT`);
    process.exit(2);
  }
  return port;
}

function sendJson(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify(body));
}

function sendError(response, status, error, description) {
  console.error(`fake-provider.mjs: ${status} ${error}: ${description}`);
  sendJson(response, status, { error, error_description: description });
}

async function readBody(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new Error(`request body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isLoopbackUrl(value) {
  const url = URL.parse(value);
  return url !== null
    && url.protocol === 'http:'
    && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

function discovery() {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'email', 'profile'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    grant_types_supported: ['authorization_code'],
  };
}

function authorize(url, response) {
  const params = url.searchParams;
  const redirectUri = params.get('redirect_uri');
  if (!redirectUri || !isLoopbackUrl(redirectUri)) {
    sendError(response, 400, 'invalid_request', `redirect_uri '${redirectUri ?? ''}' is missing or not an http URL on 127.0.0.1 or localhost`);
    return;
  }

  const location = new URL(redirectUri);
  const state = params.get('state');
  const reply = (values) => {
    for (const [name, value] of Object.entries(values)) {
      location.searchParams.set(name, value);
    }
    if (state !== null) {
      location.searchParams.set('state', state);
    }
    response.writeHead(302, { location: location.href, 'cache-control': 'no-store' });
    response.end();
  };

  if (mode === 'access_denied') {
    reply({ error: 'access_denied', error_description: 'the fake provider denies every request in mode access_denied' });
    return;
  }

  const missing = ['client_id', 'response_type', 'code_challenge', 'code_challenge_method']
    .filter((name) => !params.get(name));
  if (missing.length > 0) {
    reply({ error: 'invalid_request', error_description: `missing parameters: ${missing.join(', ')}` });
    return;
  }
  if (params.get('response_type') !== 'code') {
    reply({ error: 'unsupported_response_type', error_description: 'only response_type=code is supported' });
    return;
  }
  if (params.get('code_challenge_method') !== 'S256') {
    reply({ error: 'invalid_request', error_description: 'only code_challenge_method=S256 is supported' });
    return;
  }

  for (const [pending, grant] of codes) {
    if (grant.expiresAt < Date.now()) {
      codes.delete(pending);
    }
  }
  const code = randomBytes(24).toString('base64url');
  codes.set(code, {
    clientId: params.get('client_id'),
    redirectUri,
    nonce: params.get('nonce'),
    codeChallenge: params.get('code_challenge'),
    expiresAt: Date.now() + CODE_TTL_MILLISECONDS,
  });
  reply({ code });
}

// Returns the client_id that the token request authenticates with, or undefined.
function clientIdOf(request, form) {
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice('Basic '.length), 'base64').toString('utf8');
    const separator = decoded.indexOf(':');
    if (separator <= 0) {
      return undefined;
    }
    try {
      return decodeURIComponent(decoded.slice(0, separator).replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
  }
  if (form.get('client_id') && form.get('client_secret')) {
    return form.get('client_id');
  }
  return undefined;
}

async function idTokenFor(grant) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    sub: 'fake-user',
    email: 'fake@example.com',
    email_verified: true,
    iat: now,
    exp: now + ID_TOKEN_TTL_SECONDS,
  };
  if (grant.nonce !== null) {
    claims.nonce = grant.nonce;
  }
  let tokenIssuer = issuer;
  let audience = grant.clientId;
  let key = signingKey.privateKey;

  switch (mode) {
    case 'wrong_aud':
      audience = 'some-other-client';
      break;
    case 'wrong_iss':
      // A longer string that starts with the real issuer, which also catches prefix checks.
      tokenIssuer = `${issuer}/other-issuer`;
      break;
    case 'expired':
      claims.iat = now - 2 * ID_TOKEN_TTL_SECONDS;
      claims.exp = now - ID_TOKEN_TTL_SECONDS;
      break;
    case 'bad_signature':
      key = unpublishedKey.privateKey;
      break;
    case 'wrong_nonce':
      claims.nonce = `not-${grant.nonce ?? 'the-nonce'}`;
      break;
    default:
      break;
  }

  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'JWT' })
    .setIssuer(tokenIssuer)
    .setAudience(audience)
    .sign(key);
}

async function token(request, response) {
  const form = new URLSearchParams(await readBody(request));
  const clientId = clientIdOf(request, form);
  if (clientId === undefined) {
    sendError(response, 401, 'invalid_client', 'client authentication by client_secret_basic or client_secret_post is required');
    return;
  }
  if (form.get('grant_type') !== 'authorization_code') {
    sendError(response, 400, 'unsupported_grant_type', `grant_type '${form.get('grant_type') ?? ''}' is not authorization_code`);
    return;
  }

  const code = form.get('code') ?? '';
  const grant = codes.get(code);
  // A code is single-use: the first attempt removes it, whether or not that attempt succeeds.
  codes.delete(code);
  if (grant === undefined || grant.expiresAt < Date.now()) {
    sendError(response, 400, 'invalid_grant', 'the code is unknown, used or expired');
    return;
  }
  if (grant.clientId !== clientId) {
    sendError(response, 400, 'invalid_grant', `the code was issued to client '${grant.clientId}', not '${clientId}'`);
    return;
  }
  if (form.get('redirect_uri') !== grant.redirectUri) {
    sendError(response, 400, 'invalid_grant', 'redirect_uri differs from the authorization request');
    return;
  }
  const verifier = form.get('code_verifier') ?? '';
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  if (!verifier || challenge !== grant.codeChallenge) {
    sendError(response, 400, 'invalid_grant', 'code_verifier does not match the code_challenge');
    return;
  }

  sendJson(response, 200, {
    access_token: randomBytes(24).toString('base64url'),
    token_type: 'Bearer',
    expires_in: 3600,
    scope: 'openid email',
    id_token: await idTokenFor(grant),
  });
}

async function setMode(request, response) {
  let requested;
  try {
    ({ mode: requested } = JSON.parse(await readBody(request)));
  } catch (error) {
    sendError(response, 400, 'invalid_request', `body is not JSON of the form {"mode": "..."}: ${error.message}`);
    return;
  }
  if (!MODES.has(requested)) {
    sendError(response, 400, 'invalid_request', `invalid mode '${requested}': expected one of ${[...MODES].join(', ')}`);
    return;
  }
  mode = requested;
  console.log(`mode ${mode}`);
  sendJson(response, 200, { mode });
}

async function route(request, response) {
  const url = new URL(request.url, issuer);
  const endpoint = `${request.method} ${url.pathname}`;
  switch (endpoint) {
    case 'GET /.well-known/openid-configuration':
      sendJson(response, 200, discovery());
      return;
    case 'GET /jwks':
      sendJson(response, 200, { keys: [publicJwk] });
      return;
    case 'GET /authorize':
      authorize(url, response);
      return;
    case 'POST /token':
      await token(request, response);
      return;
    case 'GET /mode':
      sendJson(response, 200, { mode });
      return;
    case 'POST /mode':
      await setMode(request, response);
      return;
    default:
      sendError(response, 404, 'not_found', `no endpoint ${endpoint}`);
  }
}

const server = createServer((request, response) => {
  route(request, response).catch((error) => {
    console.error(`fake-provider.mjs: ${request.method} ${request.url} failed: ${error.stack}`);
    if (!response.headersSent) {
      sendJson(response, 500, { error: 'server_error', error_description: error.message });
    } else {
      response.destroy();
    }
  });
});
server.on('error', (error) => {
  console.error(`fake-provider.mjs: cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
