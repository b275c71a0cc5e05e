"""30-redis-tls: EF_REDIS_URL=rediss://... talks TLS to Redis (OpenSSL under
hiredis). A throwaway CA and server certificate are made with the openssl
CLI, a redis-server of the test's own listens on a TLS port only, and the
gateway trusts the CA through EF_REDIS_TLS_CA_FILE:

- sessions land in that Redis (read back with redis-cli --tls), /healthz
  says Redis ok, and a Redis restart is survived (degraded, then ok again);
- a server certificate signed by another CA is refused: one clear log line
  ("certificate verify failed"), /healthz degraded with Redis down, webhooks
  still stored in PostgreSQL."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import eftest
from eftest import (Gateway, assert_eq, assert_status, conversations, count, fail, tg_message,
                    tg_user)


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=str(cwd), capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        fail("openssl %s: %s" % (" ".join(args), r.stderr[-2000:]))


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
            name + ".crt", "-subj", "/CN=easyflow test " + name, "-days", "2", cwd=d)


def make_server_cert(d, ca, name):
    """A certificate for localhost and 127.0.0.1 signed by ca."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
            name + ".csr", "-subj", "/CN=localhost", cwd=d)
    (d / (name + ".ext")).write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext",
            cwd=d)


class TlsRedis:
    """A redis-server of its own with TLS only (no plain port)."""

    def __init__(self, d, cert, key, ca):
        self.d, self.cert, self.key, self.ca = d, cert, key, ca
        self.port = eftest.free_port()
        self.proc = None
        eftest.register(self)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
             "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
             "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "no", "--save", "",
             "--appendonly", "no", "--dir", str(self.d)],
            stdout=open(eftest.log_dir() / ("redis-tls-%d.log" % self.port), "ab"),
            stderr=subprocess.STDOUT, start_new_session=True)
        eftest.wait_until(lambda: self.cli("PING") == "PONG", timeout=10, what="TLS Redis")

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "--tls", "--cacert", str(self.ca), "-h", "localhost",
                            "-p", str(self.port), "-n", "0"] + list(args),
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() if r.returncode == 0 else None

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cleanup(self, ok):
        self.stop()


def setup(other_ca=False):
    """Certificates in a temp dir and a TLS Redis; with other_ca the server's
    certificate is signed by a CA the gateway is not told to trust."""
    d = Path(tempfile.mkdtemp(prefix="redis-tls-", dir=str(eftest.STATE)))
    eftest.register(type("Tmp", (), {"cleanup": lambda self, ok: shutil.rmtree(d, True)})())
    make_ca(d, "ca")
    signer = "ca"
    if other_ca:
        make_ca(d, "other")
        signer = "other"
    make_server_cert(d, signer, "server")
    r = TlsRedis(d, d / "server.crt", d / "server.key", d / (signer + ".crt"))
    return d, r


def healthz_redis(gw, want, timeout=10):
    return eftest.wait_until(
        lambda: (lambda h: h if h.status == 200 and h.json().get("redis") == want else None)(
            gw.healthz()), timeout=timeout, what="healthz redis=%s" % want)


def test_session_over_tls():
    d, r = setup()
    env = {"EF_REDIS_TLS_CA_FILE": str(d / "ca.crt")}
    user = tg_user(uid=7730000001)
    url = "rediss://localhost:%d/0" % r.port
    with Gateway(redis_url=url, env=env) as gw:
        h = healthz_redis(gw, "ok")
        assert_eq(h.json().get("status"), "ok", "healthz status")
        assert_status(gw.post_update(tg_message(1, "привет", user=user)), 200)
        conv = conversations(gw.db)[0]
        raw = eftest.wait_until(lambda: r.cli("GET", "session:" + conv["session_id"]),
                                timeout=5, what="session key in the TLS Redis")
        s = json.loads(raw)
        assert_eq(s["conversation_id"], conv["id"], "session in Redis names the conversation")
        keys = r.cli("KEYS", "chat:*")
        if not keys or str(user["id"]) not in keys:
            fail("no chat key for the user in the TLS Redis: %r" % keys)
        # A Redis restart: degraded while it is down, ok again after, over TLS.
        r.stop()
        assert_status(gw.post_update(tg_message(2, "Redis лежит", user=user)), 200)
        healthz_redis(gw, "down")
        r.start()
        healthz_redis(gw, "ok", timeout=20)
        assert_status(gw.post_update(tg_message(3, "снова тут", user=user)), 200)
        conv = conversations(gw.db)[0]
        eftest.wait_until(lambda: r.cli("GET", "session:" + conv["session_id"]), timeout=5,
                          what="session rewritten after the Redis restart")
        assert_eq(conv["messages_count"], 3)
        if "certificate verify failed" in gw.log_text():
            fail("a verify failure against the right CA:\n" + gw.log_tail())


def test_certificate_from_another_ca_is_refused():
    d, r = setup(other_ca=True)
    env = {"EF_REDIS_TLS_CA_FILE": str(d / "ca.crt")}
    user = tg_user(uid=7730000002)
    url = "rediss://localhost:%d/0" % r.port
    with Gateway(redis_url=url, env=env) as gw:
        line = gw.wait_log(r"WARN.*redis.*Redis TLS: certificate verify failed: \w", timeout=10)
        if not any(w in line for w in ("issuer", "self-signed", "self signed")):
            fail("the refusal does not say why: %r" % line)
        h = healthz_redis(gw, "down")
        assert_eq(h.json().get("status"), "degraded", "healthz status")
        assert_eq(h.json().get("postgres"), "ok", "postgres in healthz")
        for mid in (1, 2):
            assert_status(gw.post_update(tg_message(mid, "без Redis %d" % mid, user=user)), 200,
                          "webhook with Redis refused")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 2,
                  "stored in PostgreSQL")
        assert_eq(r.cli("DBSIZE"), "0", "nothing written to the untrusted Redis")
