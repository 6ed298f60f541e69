"""Rotating the token-signing key without a restart (issue 3): the JWKS can
hold the previous key while tokens signed with it are still out there. The
operator writes the new key files and sends SIGHUP (`./pilotlight reload`):
each pool master reads its keys again and forks its new workers with them.
A broken key file is refused and the old keys stay."""
import os
import signal

import nacl.signing
import pytest

from conftest import SERVICES, VAR, assert_error, b64url, jwt_header, log_lines, master_pid, wait_until

SECRETS = VAR / "secrets"
SIGNING = SECRETS / "jwt_signing.key"
PUBLIC = SECRETS / "jwt_public.keys"


def header_kid(token):
    return jwt_header(token)["kid"]


def reload_all():
    for svc in SERVICES:
        os.kill(master_pid(svc), signal.SIGHUP)


def jwks_kids(api):
    return [k["kid"] for k in api.get("/api/accounts/.well-known/jwks.json").json()["keys"]]


@pytest.fixture
def original_keys():
    saved = SIGNING.read_bytes(), PUBLIC.read_bytes()
    yield saved
    SIGNING.write_bytes(saved[0])
    PUBLIC.write_bytes(saved[1])
    reload_all()


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(api, make_user, original_keys):
    user = make_user(display_name="Rotating")
    old_token = user.token
    old_kid = original_keys[0].decode().split()[0]
    assert header_kid(old_token) == old_kid

    new = nacl.signing.SigningKey.generate()
    new_kid = "k-rotated-" + b64url(os.urandom(6))
    # 1. the new public key first (it will sign), the old one still accepted
    PUBLIC.write_text(f"{new_kid} {b64url(bytes(new.verify_key))}\n" + original_keys[1].decode())
    SIGNING.write_text(f"{new_kid} {b64url(bytes(new))}\n")
    reload_all()

    wait_until(lambda: jwks_kids(api) == [new_kid, old_kid] or None, timeout=10, message="the JWKS with both keys")
    fresh = wait_until(lambda: (t := user.relogin().token) and header_kid(t) == new_kid and t or None,
                       timeout=10, message="a token signed with the new key")
    for token in (old_token, fresh):
        assert api.get("/api/accounts/me", token=token).status_code == 200
        assert api.get("/api/projects", token=token).status_code == 200
        assert api.get("/api/chat/rooms/lobby/messages", token=token).status_code == 200

    # 2. later, the old key goes: its tokens stop working everywhere
    PUBLIC.write_text(f"{new_kid} {b64url(bytes(new.verify_key))}\n")
    reload_all()
    wait_until(lambda: jwks_kids(api) == [new_kid] or None, timeout=10, message="the JWKS without the old key")
    for path in ("/api/accounts/me", "/api/projects", "/api/chat/rooms/lobby/messages"):
        wait_until(lambda: api.get(path, token=old_token).status_code == 401 or None, timeout=10,
                   message=f"the old key refused by {path}")
        assert_error(api.get(path, token=old_token), 401, "invalid_token")
        assert api.get(path, token=fresh).status_code == 200


def test_a_broken_key_file_is_refused_and_the_old_keys_stay(api, make_user, original_keys):
    user = make_user(display_name="Steady")
    marks = {svc: len(log_lines(svc)) for svc in SERVICES}
    PUBLIC.write_text("this is not a key file\n")
    reload_all()
    for svc in SERVICES:
        wait_until(lambda: [ln for ln in log_lines(svc)[marks[svc]:] if ln.get("event") == "reload_failed"] or None,
                   timeout=10, message=f"{svc} refusing the broken file")
    # a signing key that is not the first public key is refused by accounts alone
    PUBLIC.write_bytes(original_keys[1])
    other = nacl.signing.SigningKey.generate()
    SIGNING.write_text(f"k-stray {b64url(bytes(other))}\n")
    mark = len(log_lines("accounts"))
    os.kill(master_pid("accounts"), signal.SIGHUP)
    wait_until(lambda: [ln for ln in log_lines("accounts")[mark:] if ln.get("event") == "reload_failed"] or None,
               timeout=10, message="accounts refusing a signing key it cannot publish")
    # the workers forked since still sign and verify with the old keys
    old_kid = original_keys[0].decode().split()[0]
    assert header_kid(user.relogin().token) == old_kid
    assert jwks_kids(api)[0] == old_kid
    for path in ("/api/accounts/me", "/api/projects", "/api/chat/rooms/lobby/messages"):
        assert api.get(path, token=user.token).status_code == 200
