"""Access tokens (issue 3): the JWKS, a token checked against the JWT spec
(RFC 7519, RFC 8037 EdDSA) with python3-nacl alone, and the verifier every
service runs refusing malformed, tampered, foreign, expired and alg-confused
tokens with 401 `invalid_token` and `WWW-Authenticate: Bearer`.

Tokens are forged here with the stack's own signing key
($PL_VAR/secrets/jwt_signing.key, "kid base64url-seed"), so a refusal is
about the one thing each case changes."""
import base64
import hashlib
import hmac
import json
import time

import nacl.exceptions
import nacl.signing
import pytest

from conftest import VAR, assert_error, b64url, b64url_decode, jwt_claims, jwt_segment

ISSUER = "pilotlight"
LEEWAY_S = 30
ACCESS_TTL_S = 900
# an endpoint of each service that needs a token and answers 200 with a good one
PROTECTED = ["/api/accounts/me", "/api/projects"]


class Keys:
    """The stack's signing key, and its public keys as the JWKS shows them."""

    def __init__(self, api):
        kid, seed = (VAR / "secrets" / "jwt_signing.key").read_text().split()
        self.kid = kid
        self.signing = nacl.signing.SigningKey(b64url_decode(seed))
        r = api.get("/api/accounts/.well-known/jwks.json")
        assert r.status_code == 200, r.text
        self.jwks = r.json()
        self.public = {k["kid"]: b64url_decode(k["x"]) for k in self.jwks["keys"]}

    def sign(self, claims, header=None, key=None):
        header = {"alg": "EdDSA", "typ": "JWT", "kid": self.kid} if header is None else header
        signing_input = f"{jwt_segment(header)}.{jwt_segment(claims)}"
        sig = (key or self.signing).sign(signing_input.encode()).signature
        return f"{signing_input}.{b64url(sig)}"


@pytest.fixture(scope="module")
def keys(api):
    return Keys(api)


@pytest.fixture(scope="module")
def holder(make_user):
    """A user whose claims the forged tokens copy."""
    return make_user(display_name="Token Holder")


def claims_for(user, **changes):
    now = int(time.time())
    c = {"iss": ISSUER, "sub": str(user.id), "iat": now, "nbf": now, "exp": now + 600, "jti": "t-" + str(now),
         "role": "user", "email": user.email, "name": "Token Holder"}
    c.update(changes)
    return {k: v for k, v in c.items() if v is not None}


def verify_per_spec(token, jwks):
    """RFC 7515 compact serialization + RFC 8037: the JWS signing input is the
    first two segments as sent; the key is the JWKS entry named by kid."""
    h64, p64, s64 = token.split(".")
    header = json.loads(b64url_decode(h64))
    assert header["alg"] == "EdDSA"
    jwk = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert len(jwk) == 1, header
    assert (jwk[0]["kty"], jwk[0]["crv"]) == ("OKP", "Ed25519")
    nacl.signing.VerifyKey(b64url_decode(jwk[0]["x"])).verify(f"{h64}.{p64}".encode(), b64url_decode(s64))
    return header, json.loads(b64url_decode(p64))


# --- the JWKS and our tokens, per the spec -------------------------------------------------


def test_jwks(api, keys):
    r = api.get("/api/accounts/.well-known/jwks.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    cache = [d.strip() for d in r.headers["Cache-Control"].split(",")]
    assert "public" in cache and any(d.startswith("max-age=") and int(d[8:]) > 0 for d in cache), cache
    body = r.json()
    assert set(body) == {"keys"} and body["keys"]
    for k in body["keys"]:
        assert set(k) == {"kty", "crv", "kid", "x", "alg", "use"}, k
        assert (k["kty"], k["crv"], k["alg"], k["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
        assert len(b64url_decode(k["x"])) == 32 and "=" not in k["x"]
    assert len({k["kid"] for k in body["keys"]}) == len(body["keys"])
    # the current signing key is published (and never its private half)
    assert keys.public[keys.kid] == bytes(keys.signing.verify_key)
    assert '"d"' not in r.text  # no private "d" member
    # no token needed, and the same for everyone
    assert api.get("/api/accounts/.well-known/jwks.json", token="garbage").json() == body


def test_access_token_verifies_with_the_jwks_per_spec(api, make_user, admin):
    user = make_user(display_name="Spec Reader")
    before = int(time.time())
    r = api.post("/api/accounts/login", {"email": user.email, "password": user.password})
    token = r.json()["access_token"]
    jwks = api.get("/api/accounts/.well-known/jwks.json").json()
    header, claims = verify_per_spec(token, jwks)
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": header["kid"]}
    assert claims["iss"] == ISSUER and claims["sub"] == str(user.id)
    assert claims["role"] == "user" and claims["email"] == user.email and claims["name"] == "Spec Reader"
    assert before - 5 <= claims["iat"] <= int(time.time()) + 5
    assert claims["exp"] - claims["iat"] == ACCESS_TTL_S == r.json()["expires_in"]
    assert claims.get("nbf", claims["iat"]) <= claims["iat"]
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert "password" not in claims and "hash" not in json.dumps(claims)
    # a changed byte anywhere breaks it
    h64, p64, s64 = token.split(".")
    forged = jwt_segment({**claims, "role": "admin"})
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify_per_spec(f"{h64}.{forged}.{s64}", jwks)
    # every token is its own (jti), and an admin's says so
    assert jwt_claims(user.relogin().token)["jti"] != claims["jti"]
    _, admin_claims = verify_per_spec(admin.token, jwks)
    assert admin_claims["role"] == "admin"


def test_one_token_for_every_service(api, make_user):
    """Every service verifies with the public keys alone."""
    user = make_user()
    for path in PROTECTED:
        assert api.get(path, token=user.token).status_code == 200, path


def test_a_token_we_sign_ourselves_is_accepted(api, keys, holder):
    """The control for the forgeries below: this signing procedure is right."""
    for path in PROTECTED:
        r = api.get(path, token=keys.sign(claims_for(holder)))
        assert r.status_code == 200, (path, r.text)
    # exp within the leeway still passes
    r = api.get("/api/accounts/me", token=keys.sign(claims_for(holder, exp=int(time.time()) - 5)))
    assert r.status_code == 200, r.text
    r = api.get("/api/accounts/me", token=keys.sign(claims_for(holder, nbf=None)))
    assert r.status_code == 200, r.text


# --- refusals ----------------------------------------------------------------------------------


def flip_bit(text, byte=0, bit=0):
    raw = bytearray(b64url_decode(text))
    raw[byte] ^= 1 << bit
    return b64url(bytes(raw))


def hs256(header, claims, secret):
    signing_input = f"{jwt_segment(header)}.{jwt_segment(claims)}"
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def forgeries(keys, user):
    """(name, token) pairs that must all be refused."""
    now = int(time.time())
    good = keys.sign(claims_for(user))
    h64, p64, s64 = good.split(".")
    c = claims_for(user)
    pub = keys.public[keys.kid]
    x = b64url(pub)
    none_header = {"alg": "none", "typ": "JWT", "kid": keys.kid}
    return [
        ("bad base64", "!!!.@@@.###"),
        ("bad base64 header", f"{h64[:-2]}*!.{p64}.{s64}"),
        ("bad base64 signature", f"{h64}.{p64}.{s64[:-3]}$$$"),
        ("padded base64", f"{h64}.{p64}.{s64}=="),
        ("standard base64", f"{h64}.{p64}.{base64.b64encode(b64url_decode(s64)).decode()}"),
        ("header not JSON", f"{b64url('not json')}.{p64}.{s64}"),
        ("header a JSON array", f"{b64url('[1]')}.{p64}.{s64}"),
        ("claims not JSON", f"{h64}.{b64url('nope')}.{s64}"),
        ("one segment", "abc"),
        ("two segments", f"{h64}.{p64}"),
        ("four segments", f"{good}.{s64}"),
        ("five segments", f"{good}.a.b"),
        ("empty signature", f"{h64}.{p64}."),
        ("empty header", f".{p64}.{s64}"),
        ("empty", "."),
        ("alg none", f"{jwt_segment(none_header)}.{p64}."),
        ("alg none with a signature", f"{jwt_segment(none_header)}.{p64}.{s64}"),
        ("alg None", f"{jwt_segment({**none_header, 'alg': 'None'})}.{p64}."),
        ("no alg", keys.sign(c, {"typ": "JWT", "kid": keys.kid})),
        ("alg ES256", keys.sign(c, {"alg": "ES256", "typ": "JWT", "kid": keys.kid})),
        ("alg Ed25519", keys.sign(c, {"alg": "Ed25519", "typ": "JWT", "kid": keys.kid})),
        ("HS256 keyed with the public key bytes", hs256({"alg": "HS256", "typ": "JWT", "kid": keys.kid}, c, pub)),
        ("HS256 keyed with the JWKS x", hs256({"alg": "HS256", "typ": "JWT", "kid": keys.kid}, c, x.encode())),
        ("HS256 without kid", hs256({"alg": "HS256", "typ": "JWT"}, c, pub)),
        ("flipped signature bit", f"{h64}.{p64}.{flip_bit(s64, 0, 0)}"),
        ("flipped last signature bit", f"{h64}.{p64}.{flip_bit(s64, 63, 7)}"),
        ("claims changed", f"{h64}.{jwt_segment({**c, 'role': 'admin'})}.{s64}"),
        ("claims of someone else", f"{h64}.{jwt_segment({**c, 'sub': '1'})}.{s64}"),
        ("header changed", f"{jwt_segment({'alg': 'EdDSA', 'kid': keys.kid})}.{p64}.{s64}"),
        ("expired", keys.sign(claims_for(user, iat=now - 3600, nbf=now - 3600, exp=now - LEEWAY_S - 60))),
        ("not yet valid", keys.sign(claims_for(user, nbf=now + LEEWAY_S + 600))),
        ("no exp", keys.sign(claims_for(user, exp=None))),
        ("exp a string", keys.sign(claims_for(user, exp=str(now + 600)))),
        ("unknown kid", keys.sign(c, {"alg": "EdDSA", "typ": "JWT", "kid": "no-such-key"})),
        ("no kid", keys.sign(c, {"alg": "EdDSA", "typ": "JWT"})),
        ("kid not a string", keys.sign(c, {"alg": "EdDSA", "typ": "JWT", "kid": 1})),
        ("foreign key, our kid", keys.sign(c, key=nacl.signing.SigningKey.generate())),
        ("embedded jwk", keys.sign(c, {"alg": "EdDSA", "typ": "JWT", "kid": "mine",
                                       "jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}})),
        ("critical extension", keys.sign(c, {"alg": "EdDSA", "typ": "JWT", "kid": keys.kid, "crit": ["exp"]})),
        ("wrong issuer", keys.sign(claims_for(user, iss="evil"))),
        ("no issuer", keys.sign(claims_for(user, iss=None))),
        ("no subject", keys.sign(claims_for(user, sub=None))),
        ("subject not an id", keys.sign(claims_for(user, sub="root"))),
        ("numeric subject", keys.sign(claims_for(user, sub=user.id))),
        ("unknown role", keys.sign(claims_for(user, role="superuser"))),
        ("very long", f"{h64}.{p64}.{s64}" + "A" * 5000),
    ]


def test_forged_and_malformed_tokens_are_refused(api, keys, holder):
    for name, token in forgeries(keys, holder):
        for path in PROTECTED:
            r = api.get(path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (name, path, r.status_code, r.text)
            assert_error(r, 401, "invalid_token")
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), (name, r.headers)
            assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], name
            assert r.headers.get("X-Request-Id")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "abc"])
def test_a_malformed_authorization_header_is_refused(api, value):
    for path in PROTECTED:
        r = api.get(path, headers={"Authorization": value})
        assert r.status_code == 401, (value, r.text)
        assert r.json()["error"]["code"] in ("invalid_token", "missing_token")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_missing_token_is_refused(api):
    for path in PROTECTED:
        r = api.get(path)
        assert_error(r, 401, "missing_token")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_refused_token_changes_nothing(api, keys, holder):
    forged = keys.sign(claims_for(holder, role="admin"), {"alg": "EdDSA", "typ": "JWT", "kid": "no-such-key"})
    assert_error(api.patch("/api/accounts/me", {"display_name": "Hijacked"}, token=forged), 401, "invalid_token")
    assert_error(api.patch(f"/api/accounts/users/{holder.id}", {"role": "admin"}, token=forged), 401, "invalid_token")
    me = api.get("/api/accounts/me", token=holder.token).json()["user"]
    assert (me["display_name"], me["role"]) == ("Token Holder", "user")
