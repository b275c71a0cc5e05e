"""14-api-auth: operators log in to /api/v1 with the account `easyflow
operator add` made: one 401 answer for a wrong password and an unknown
e-mail, throttling of repeated failures per account and per address (429
with Retry-After), refresh tokens stored hashed and rotated (the old one
stops working; using it again revokes the whole family), logout and
logout everywhere, 401 for a missing, forged, altered or expired access
token, 403 for the wrong role, and clear errors for bad requests."""

import base64
import hashlib
import hmac
import json
import time

from api_helpers import PASSWORD, add_operator, call, expect, login
from eftest import Gateway, TEST_SECRET_KEY, assert_eq, fail, fresh_db, psql, psql1

ROUTES = [("POST", "/auth/logout"), ("POST", "/auth/logout-all"), ("GET", "/operators"),
          ("GET", "/conversations"),
          ("GET", "/conversations/00000000-0000-4000-8000-000000000000")] + [
    ("POST", "/conversations/00000000-0000-4000-8000-000000000000/" + a)
    for a in ("claim", "release", "close", "escalate", "messages")]


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _token(claims, key_hex=TEST_SECRET_KEY, header=None):
    """A token signed as the gateway signs them (HKDF-SHA256 of
    EF_SECRET_KEY, salt "easyflow", info "easyflow api access token v1")."""
    ikm = bytes.fromhex(key_hex)
    prk = hmac.new(b"easyflow", ikm, hashlib.sha256).digest()
    key = hmac.new(prk, b"easyflow api access token v1\x01", hashlib.sha256).digest()
    h = header or {"alg": "HS256", "typ": "JWT"}
    signing = _b64(json.dumps(h, separators=(",", ":")).encode()) + "." + \
        _b64(json.dumps(claims, separators=(",", ":")).encode())
    return signing + "." + _b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def test_login_ok_and_the_same_401_for_any_bad_credential():
    db = fresh_db()
    add_operator(db, "olga@shop.example", "Ольга")
    with Gateway(db=db) as gw:
        t = login(gw, "Olga@Shop.example", headers={"User-Agent": "console-test/1.0"})
        for k in ("access_token", "refresh_token", "expires_in"):
            if k not in t:
                fail("login answer lacks %s: %r" % (k, t))
        assert_eq(t["expires_in"], 900, "expires_in (15 minutes)")
        assert_eq(t["user"]["role"], "operator", "role")
        expect(call(gw, "GET", "/conversations", token=t["access_token"]), 200,
               "the access token opens the API")
        # The refresh token is stored hashed, with expiry, address and user agent.
        rows = psql(db, "SELECT token, ip_address::text, user_agent, "
                        "expires_at > now() + interval '29 days' FROM refresh_tokens")
        assert_eq(len(rows), 1, "refresh token rows")
        assert_eq(rows[0][0], hashlib.sha256(t["refresh_token"].encode()).hexdigest(),
                  "stored token is the SHA-256 of the token")
        assert_eq(rows[0][1:], ["127.0.0.1/32", "console-test/1.0", "t"], "metadata")
        if psql1(db, "SELECT last_login_at IS NOT NULL FROM users WHERE email = "
                     "'olga@shop.example'") != "t":
            fail("last_login_at not set")

        wrong = call(gw, "POST", "/auth/login", {"email": "olga@shop.example",
                                                 "password": "wrong password"})
        unknown = call(gw, "POST", "/auth/login", {"email": "nobody@shop.example",
                                                   "password": PASSWORD})
        assert_eq((wrong.status, unknown.status), (401, 401), "bad credentials")
        assert_eq(wrong.body, unknown.body, "the same body for both")
        assert_eq(wrong.json(), {"error": "invalid e-mail or password"}, "the body")
        if "olga" in gw.log_text().lower() or PASSWORD in gw.log_text():
            fail("the log names the e-mail or the password")
        for body in ({"email": "olga@shop.example"}, {"password": "x"},
                     {"email": 5, "password": "x"}):
            expect(call(gw, "POST", "/auth/login", body), 400, "login with %r" % body)


def test_old_pbkdf2_hash_still_logs_in_and_is_upgraded():
    db = fresh_db()
    add_operator(db, "ivan@shop.example", "Иван")
    salt = b"0123456789abcdef"
    dk = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, 1000, 32)
    old = "pbkdf2_sha256$1000$%s$%s" % (base64.b64encode(salt).decode(),
                                        base64.b64encode(dk).decode())
    psql(db, "UPDATE users SET password_hash = '%s' WHERE email = 'ivan@shop.example'" % old)
    with Gateway(db=db) as gw:
        login(gw, "ivan@shop.example")
        h = psql1(db, "SELECT password_hash FROM users WHERE email = 'ivan@shop.example'")
        if not h.startswith("$argon2id$"):
            fail("the PBKDF2 hash was not upgraded at login: %r" % h)
        login(gw, "ivan@shop.example")  # the new hash works


def test_repeated_failures_are_throttled_per_account_and_per_address():
    db = fresh_db()
    add_operator(db, "olga@shop.example", "Ольга")
    add_operator(db, "petr@shop.example", "Пётр")
    with Gateway(db=db) as gw:
        for i in range(5):
            expect(call(gw, "POST", "/auth/login", {"email": "olga@shop.example",
                                                    "password": "guess %d" % i}), 401,
                   "failure %d" % (i + 1))
        r = call(gw, "POST", "/auth/login", {"email": "OLGA@shop.example",
                                             "password": PASSWORD})
        expect(r, 429, "the right password while the account is locked")
        retry = int(r.headers.get("retry-after", "0"))
        if not 1 <= retry <= 900:
            fail("Retry-After %r" % r.headers.get("retry-after"))
        # Another account from the same address still logs in...
        login(gw, "petr@shop.example")
        # ...until the address itself failed too often (20 within the window).
        for i in range(15):
            expect(call(gw, "POST", "/auth/login", {"email": "x%d@shop.example" % i,
                                                    "password": "guess"}), 401,
                   "address failure %d" % (i + 6))
        expect(call(gw, "POST", "/auth/login", {"email": "petr@shop.example",
                                                "password": PASSWORD}), 429,
               "a good login from an address that failed 20 times")


def test_refresh_rotates_and_reuse_revokes_the_family():
    db = fresh_db()
    add_operator(db, "olga@shop.example", "Ольга")
    with Gateway(db=db) as gw:
        a = login(gw, "olga@shop.example")
        other = login(gw, "olga@shop.example")  # a second device: its own family
        b = expect(call(gw, "POST", "/auth/refresh", {"refresh_token": a["refresh_token"]}),
                   200, "refresh")
        if b["refresh_token"] == a["refresh_token"]:
            fail("refresh did not rotate the refresh token")
        expect(call(gw, "GET", "/conversations", token=b["access_token"]), 200, "new access")
        c = expect(call(gw, "POST", "/auth/refresh", {"refresh_token": b["refresh_token"]}),
                   200, "refresh of the new token")
        # The rotated token comes back (stolen): refused, and its family is revoked.
        r = call(gw, "POST", "/auth/refresh", {"refresh_token": a["refresh_token"]})
        assert_eq(r.json(), {"error": "invalid refresh token"}, "reuse answer")
        assert_eq(r.status, 401, "reuse status")
        expect(call(gw, "POST", "/auth/refresh", {"refresh_token": c["refresh_token"]}), 401,
               "the family's newest token after the reuse")
        rows = psql(db, "SELECT token, revoked_reason FROM refresh_tokens ORDER BY id")
        fam = [hashlib.sha256(t["refresh_token"].encode()).hexdigest() for t in (a, b, c)]
        assert_eq(sorted(r for tok, r in rows if tok in fam), ["reuse"] * 3,
                  "the family's three tokens, revoked for reuse")
        assert_eq([r for tok, r in rows if tok not in fam], [None], "the other family")
        gw.wait_log(r"refresh token reused after rotation")
        # The other device is untouched; logout ends it.
        d = expect(call(gw, "POST", "/auth/refresh", {"refresh_token": other["refresh_token"]}),
                   200, "the other family")
        out = expect(call(gw, "POST", "/auth/logout", {"refresh_token": d["refresh_token"]},
                          token=d["access_token"]), 200, "logout")
        assert_eq(out["revoked"], 2, "revoked by logout (the family: rotated and live)")
        expect(call(gw, "POST", "/auth/refresh", {"refresh_token": d["refresh_token"]}), 401,
               "refresh after logout")
        expect(call(gw, "POST", "/auth/refresh", {"refresh_token": "no-such-token"}), 401,
               "an unknown refresh token")
        expect(call(gw, "POST", "/auth/refresh", {}), 400, "refresh without a token")


def test_logout_everywhere():
    db = fresh_db()
    add_operator(db, "olga@shop.example", "Ольга")
    with Gateway(db=db) as gw:
        ts = [login(gw, "olga@shop.example") for _ in range(3)]
        out = expect(call(gw, "POST", "/auth/logout-all", token=ts[0]["access_token"]), 200,
                     "logout-all")
        assert_eq(out["revoked"], 3, "tokens revoked")
        for t in ts:
            expect(call(gw, "POST", "/auth/refresh", {"refresh_token": t["refresh_token"]}),
                   401, "refresh after logout-all")


def test_401_without_or_with_a_bad_token_and_403_for_the_wrong_role():
    db = fresh_db()
    add_operator(db, "olga@shop.example", "Ольга")
    add_operator(db, "boss@shop.example", "Босс", role="admin")
    with Gateway(db=db) as gw:
        t = login(gw, "olga@shop.example")
        uid = t["user"]["id"]
        now = int(time.time())
        bad = {
            "no token": None,
            "garbage": "garbage",
            "another key": _token({"sub": uid, "role": "operator", "iat": now,
                                   "exp": now + 600}, key_hex="00" * 32),
            "expired": _token({"sub": uid, "role": "operator", "iat": now - 1000,
                               "exp": now - 100}),
            "alg none": _token({"sub": uid, "role": "admin", "iat": now, "exp": now + 600},
                               header={"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + ".",
        }
        # Altered claims (role admin) under the original signature.
        head, _, sig = t["access_token"].split(".")
        forged = json.loads(base64.urlsafe_b64decode(t["access_token"].split(".")[1] + "=="))
        forged["role"] = "admin"
        bad["altered"] = head + "." + _b64(json.dumps(forged, separators=(",", ":")).encode()) \
            + "." + sig
        for method, path in ROUTES:
            for what, tok in bad.items():
                r = call(gw, method, path, {} if method == "POST" else None, token=tok)
                expect(r, 401, "%s %s with %s" % (method, path, what))
                if "bearer" not in r.headers.get("www-authenticate", "").lower():
                    fail("401 without WWW-Authenticate: Bearer (%s %s)" % (method, path))
        r = call(gw, "GET", "/conversations", headers={"Authorization": "Basic b2xnYTpw"})
        expect(r, 401, "Basic auth")
        assert_eq(expect(call(gw, "GET", "/conversations", token=bad["expired"]), 401,
                         "expired")["error"], "token expired", "expired token reason")
        # The right signature for an expiry in the future: accepted (the key derivation
        # is the documented one).
        expect(call(gw, "GET", "/conversations",
                    token=_token({"sub": uid, "role": "operator", "iat": now,
                                  "exp": now + 60})), 200, "a token signed like the gateway's")
        # Roles: operators handle conversations, admins also manage operators.
        expect(call(gw, "GET", "/operators", token=t["access_token"]), 403,
               "an operator on an admin route")
        boss = login(gw, "boss@shop.example")
        ops = expect(call(gw, "GET", "/operators", token=boss["access_token"]), 200,
                     "operators list")["operators"]
        assert_eq(sorted(o["email"] for o in ops), ["boss@shop.example", "olga@shop.example"],
                  "operators")
        if any("password" in k for o in ops for k in o):
            fail("the operator list shows a password field: %r" % ops)
        expect(call(gw, "GET", "/conversations", token=boss["access_token"]), 200,
               "an admin handles conversations too")


def test_bad_requests_get_clear_errors():
    db = fresh_db()
    add_operator(db, "olga@shop.example", "Ольга")
    with Gateway(db=db) as gw:
        tok = login(gw, "olga@shop.example")["access_token"]
        assert_eq(expect(call(gw, "GET", "/nothing-here", token=tok), 404, "unknown path"),
                  {"error": "not found"}, "404 body")
        expect(call(gw, "GET", "/auth/login"), 405, "GET on login")
        expect(call(gw, "DELETE", "/conversations", token=tok), 405, "DELETE on the list")
        expect(call(gw, "POST", "/auth/login", raw=b"{not json"), 400, "broken JSON")
        expect(call(gw, "POST", "/auth/login", raw=b"[1,2]"), 400, "a JSON array")
        expect(call(gw, "POST", "/auth/login", raw=b""), 400, "an empty body")
        r = call(gw, "POST", "/auth/login", raw=b'{"email":"' + b"a" * 70000 + b'"}')
        expect(r, 413, "a body over 64 KiB")
        expect(call(gw, "GET", "/conversations?status=bogus", token=tok), 400, "bad status")
        expect(call(gw, "GET", "/conversations?limit=0", token=tok), 400, "limit 0")
        expect(call(gw, "GET", "/conversations?before=junk", token=tok), 400, "bad cursor")
        expect(call(gw, "GET", "/conversations/not-a-uuid", token=tok), 400, "bad id")
        expect(call(gw, "GET", "/conversations/00000000-0000-4000-8000-000000000000",
                    token=tok), 404, "unknown conversation")
        expect(call(gw, "POST", "/conversations/00000000-0000-4000-8000-000000000000/claim",
                    token=tok), 404, "claim of an unknown conversation")
        gw.wait_log(r"status=413 POST /api/v1/auth/login")
        # The gateway still answers webhooks and health as before.
        expect(gw.get("/healthz"), 200, "healthz")
