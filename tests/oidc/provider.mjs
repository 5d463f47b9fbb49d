// A real OpenID provider (oidc-provider 9) on 127.0.0.1 for the lambda-auth OAuth login tests.
//
// Usage: node provider.mjs [PORT]   (or PORT=<port> node provider.mjs)
//
// The issuer is http://127.0.0.1:<port>. When the server is listening, this prints
// `ready <issuer>` on a line of its own on stdout. oidc-provider prints its own warnings
// about development-only settings as well, so a reader must look for that line instead of
// taking the first line of output.
//
// The provider has one confidential client:
//   client_id      lambda-auth-test
//   client_secret  lambda-auth-test-secret, registered for client_secret_basic (oidc-provider
//                  9 accepts client_secret_post for such a client as well)
//   redirect_uris  the comma-separated list in REDIRECT_URIS, by default
//                  http://127.0.0.1:3000/auth/oauth/test/callback
// It issues authorization codes only (response_type code) and requires PKCE with S256.
//
// Sign-in uses oidc-provider's development login and consent forms. The login name typed
// into the login form chooses the user, and the password is ignored:
//   <subject>                    sub = <subject>, no email claims
//   <subject>;<email>;<verified> sub = <subject>, email = <email>,
//                                email_verified = <verified> (`true` or `false`)
// Any other login name ends the sign-in with error=access_denied at the redirect_uri.
// The provider keeps the email of each subject in memory from its latest sign-in, so tests
// that run at the same time must each use their own subject.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const CLIENT_ID = 'lambda-auth-test';
const CLIENT_SECRET = 'lambda-auth-test-secret';
const DEFAULT_REDIRECT_URIS = 'http://127.0.0.1:3000/auth/oauth/test/callback';

const port = parsePort(process.argv[2] ?? process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const redirectUris = (process.env.REDIRECT_URIS || DEFAULT_REDIRECT_URIS)
  .split(',')
  .map((uri) => uri.trim())
  .filter(Boolean);

// Profiles by subject, from the latest sign-in of each subject.
const profiles = new Map();

function parsePort(value) {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`provider.mjs: invalid or missing port '${value ?? ''}': pass it as the first argument or in PORT`);
    process.exit(2);
  }
  return port;
}

// Parses a login name of the form `<subject>` or `<subject>;<email>;<verified>`.
function parseLogin(login) {
  const parts = login.split(';');
  if (parts.length === 1 && parts[0]) {
    return { subject: parts[0] };
  }
  const [subject, email, verified] = parts;
  if (parts.length !== 3 || !subject || !email || !['true', 'false'].includes(verified)) {
    throw new Error(`invalid login '${login}': expected <subject> or <subject>;<email>;<true|false>`);
  }
  return { subject, email, emailVerified: verified === 'true' };
}

async function findAccount(ctx, id) {
  if (!profiles.has(id)) {
    return undefined;
  }
  const profile = profiles.get(id);
  return {
    accountId: profile.subject,
    async claims() {
      const claims = { sub: profile.subject };
      if (profile.email !== undefined) {
        claims.email = profile.email;
        claims.email_verified = profile.emailVerified;
      }
      return claims;
    },
  };
}

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  // Only the authorization code flow is served, so discovery lists only `code`.
  responseTypes: ['code'],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: [],
  },
  // By default oidc-provider leaves scope claims such as email out of an ID token that is
  // issued with an access token, and serves them from userinfo only. The login code reads
  // them from the ID token, so this puts them in it.
  conformIdTokenClaims: false,
  findAccount,
  // Lifetimes in seconds. Setting them also stops oidc-provider's notices about the defaults.
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    Grant: 3600,
    IdToken: 3600,
    Interaction: 600,
    Session: 3600,
  },
  features: {
    devInteractions: { enabled: true },
  },
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
});

// The development login form passes the typed login name to interactionFinished as the
// account id. Registering the profile here makes the account id the bare subject, so the
// `sub` claim (which oidc-provider always sets to the account id) is the subject alone.
const interactionFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = async (req, res, result, options) => {
  if (result.login) {
    let profile;
    try {
      profile = parseLogin(String(result.login.accountId));
    } catch (error) {
      console.error(`provider.mjs: sign-in rejected: ${error.message}`);
      return interactionFinished(req, res, {
        error: 'access_denied',
        error_description: error.message,
      }, options);
    }
    profiles.set(profile.subject, profile);
    result.login.accountId = profile.subject;
  }
  return interactionFinished(req, res, result, options);
};

for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error']) {
  provider.on(event, (ctx, error) => {
    console.error(`provider.mjs: ${event}: ${error.name}: ${error.message}`
      + (error.error_description ? ` (${error.error_description})` : ''));
  });
}

const server = createServer(provider.callback());
server.on('error', (error) => {
  console.error(`provider.mjs: cannot listen on 127.0.0.1:${port}: ${error.message}`);
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
