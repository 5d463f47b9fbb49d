"""Verify an access token with PyJWT, an implementation independent of this service.

Usage: python tests/verify_with_pyjwt.py JWKS_URL TOKEN ISSUER AUDIENCE

The signing key is fetched from JWKS_URL by the token's kid with PyJWKClient, and
the token is decoded with the algorithm named by that JWK. Every registered claim
that the service issues must be present, and the header typ must be at+jwt
(RFC 9068 section 2.1). On success the claims are printed to standard output as
JSON and the exit status is 0. A token that fails verification exits with 1 and
an error naming the PyJWT exception on standard error; wrong arguments exit with 2.

JWKS_URL must be an http URL on 127.0.0.1, because the tests serve the JWK Set
from a local server and nothing else may be fetched.
"""

import json
import sys
import urllib.parse

import jwt

ACCESS_TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]


def fail(message: str) -> int:
    print(f"verify_with_pyjwt: {message}", file=sys.stderr)
    return 1


def main() -> int:
    if len(sys.argv) != 5:
        print(
            "usage: python tests/verify_with_pyjwt.py JWKS_URL TOKEN ISSUER AUDIENCE",
            file=sys.stderr,
        )
        return 2
    jwks_url, token, issuer, audience = sys.argv[1:]

    parsed_url = urllib.parse.urlsplit(jwks_url)
    if parsed_url.scheme != "http" or parsed_url.hostname != "127.0.0.1":
        print(
            f"verify_with_pyjwt: JWKS_URL must be http://127.0.0.1:PORT/..., got {jwks_url!r}",
            file=sys.stderr,
        )
        return 2

    try:
        signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=[signing_key.algorithm_name],
            audience=audience,
            issuer=issuer,
            options={"require": REQUIRED_CLAIMS},
        )
        # The header is read after decode, so the signature already covers it.
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        return fail(f"verification failed: {type(error).__name__}: {error}")

    if header.get("typ") != ACCESS_TOKEN_TYPE:
        return fail(f"header typ is {header.get('typ')!r}, expected {ACCESS_TOKEN_TYPE!r}")

    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
