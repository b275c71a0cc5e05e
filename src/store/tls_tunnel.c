/*
 * tls_tunnel.c -- TCP + OpenSSL client handshake, then a socketpair whose
 * one end the caller uses as a plaintext socket and a pump thread that
 * copies bytes between the other end and the TLS connection.
 *
 * Verification is always on: SSL_VERIFY_PEER against the CA file or the
 * system store, and the certificate's name (or IP address) checked against
 * the host we connected to.
 */
#include "store/tls_tunnel.h"

#include "base/err.h"
#include "base/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PUMP_BUF 16384

/* Owned by the pump thread from its start until it ends; the opening
 * thread only joins it. */
struct ef_tls_tunnel {
    pthread_t thread;
    SSL_CTX *ctx;
    SSL *ssl;
    int tls_fd;                 /* TCP socket to the server, non-blocking */
    int local_fd;               /* the pump's end of the socketpair, non-blocking */
    unsigned char up[PUMP_BUF]; /* local -> TLS, not yet written */
    size_t up_off, up_len;
    unsigned char down[PUMP_BUF]; /* TLS -> local, not yet written */
    size_t down_off, down_len;
    char why[256]; /* why the TLS side ended ("" when the user closed) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline; 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* One address: a non-blocking socket connected by the deadline, or -1 with
 * errno set. */
static int connect_addr(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int soerr = errno;
        if (errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline);
            socklen_t sl = sizeof(soerr);
            if (w == 0)
                soerr = ETIMEDOUT;
            else if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                soerr = errno;
        }
        if (soerr != 0) {
            close(fd);
            errno = soerr;
            return -1;
        }
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* TCP to host:port, trying each address until one answers by the deadline. */
static int tcp_connect(const char *host, int port, int64_t deadline, char *err, size_t errlen)
{
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, ports, &hints, &res);
    if (gai != 0) {
        ef_errf(err, errlen, "Redis TLS: resolve %.255s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, last = ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = connect_addr(ai, deadline);
        if (fd < 0)
            last = errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        ef_errf(err, errlen, "Redis TLS: connect %.255s:%d: %s", host, port, strerror(last));
    return fd;
}

/* The oldest OpenSSL error on this thread's queue as text, or fallback. */
static void ssl_reason(char *out, size_t outlen, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, outlen);
    else
        snprintf(out, outlen, "%s", fallback);
    ERR_clear_error();
}

/* A client context: TLS 1.2 or later, peer verification on, the trusted
 * CAs and the optional client certificate loaded. */
static SSL_CTX *new_ctx(const ef_tls_opts *o, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_reason(why, sizeof(why), "out of memory");
        ef_errf(err, errlen, "Redis TLS: %s", why);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    const char *what = NULL;
    const char *file = NULL;
    bool have_ca = o && o->ca_file && *o->ca_file;
    if (have_ca ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        what = "CA file";
        file = have_ca ? o->ca_file : "(system store)";
    } else if (o && o->cert_file && *o->cert_file) {
        const char *key = o->key_file && *o->key_file ? o->key_file : o->cert_file;
        what = "client certificate";
        file = o->cert_file;
        if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) == 1) {
            what = "client key";
            file = key;
            if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
                SSL_CTX_check_private_key(ctx) == 1)
                what = NULL;
        }
    }
    if (what) {
        ssl_reason(why, sizeof(why), "unreadable");
        ef_errf(err, errlen, "Redis TLS: %s %.300s: %s", what, file, why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* The name the certificate must carry: an IP address as one, else a DNS
 * name (also sent as SNI). */
static int expect_host(SSL *ssl, const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
    if (SSL_set_tlsext_host_name(ssl, host) != 1)
        return -1;
    return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

/* Why a handshake failed, certificate problems first. */
static void handshake_error(SSL *ssl, int rc, char *err, size_t errlen)
{
    char why[256];
    long vr = SSL_get_verify_result(ssl);
    int e = SSL_get_error(ssl, rc);
    if (vr != X509_V_OK) {
        ERR_clear_error();
        ef_errf(err, errlen, "Redis TLS: certificate verify failed: %s",
                X509_verify_cert_error_string(vr));
        return;
    }
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        ef_errf(err, errlen, "Redis TLS: handshake: %s",
                errno ? strerror(errno) : "connection closed by the server");
        return;
    }
    ssl_reason(why, sizeof(why), "failed");
    ef_errf(err, errlen, "Redis TLS: handshake: %s", why);
}

/* SSL_connect on the non-blocking socket until done or the deadline. */
static int handshake(SSL *ssl, int fd, int64_t deadline, char *err, size_t errlen)
{
    for (;;) {
        errno = 0;
        int rc = SSL_connect(ssl);
        if (rc == 1)
            return 0;
        int e = SSL_get_error(ssl, rc);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) {
            handshake_error(ssl, rc, err, errlen);
            return EF_EIO;
        }
        int w = wait_fd(fd, ev, deadline);
        if (w <= 0) {
            ef_errf(err, errlen, "Redis TLS: handshake: %s",
                    w == 0 ? "timed out" : strerror(errno));
            return w == 0 ? EF_ETIMEDOUT : EF_EIO;
        }
    }
}

/* ---- the pump ------------------------------------------------------------ */

typedef struct pump_state {
    bool progress;
    short tls_events; /* what the TLS side waits for, when nothing moved */
    bool done;
} pump_state;

static bool would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* A TLS call that did not complete: what to wait for, or done (closed by
 * the server, or a TLS/socket error, kept in t->why). */
static void tls_wait(ef_tls_tunnel *t, int rc, pump_state *s)
{
    int e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        s->tls_events |= POLLIN;
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        s->tls_events |= POLLOUT;
        return;
    }
    s->done = true;
    if (e == SSL_ERROR_ZERO_RETURN)
        snprintf(t->why, sizeof(t->why), "the server closed the connection");
    else if (e == SSL_ERROR_SSL &&
             ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        snprintf(t->why, sizeof(t->why), "the server closed the connection (no close_notify)");
    else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(t->why, sizeof(t->why), "%s",
                 errno ? strerror(errno) : "the server closed the connection");
    else
        ssl_reason(t->why, sizeof(t->why), "connection failed");
}

/* Server -> local: decrypt into down when it is empty, then pass it on. */
static void pump_down(ef_tls_tunnel *t, pump_state *s)
{
    if (t->down_off == t->down_len) {
        t->down_off = t->down_len = 0;
        errno = 0;
        int n = SSL_read(t->ssl, t->down, sizeof(t->down));
        if (n > 0) {
            t->down_len = (size_t)n;
            s->progress = true;
        } else {
            tls_wait(t, n, s);
        }
    }
    if (!s->done && t->down_off < t->down_len) {
        ssize_t n = send(t->local_fd, t->down + t->down_off, t->down_len - t->down_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            t->down_off += (size_t)n;
            s->progress = true;
        } else if (n == 0 || !would_block()) {
            s->done = true;
        }
    }
}

/* Local -> server: read into up when it is empty, then encrypt it. */
static void pump_up(ef_tls_tunnel *t, pump_state *s)
{
    if (t->up_off == t->up_len) {
        t->up_off = t->up_len = 0;
        ssize_t n = recv(t->local_fd, t->up, sizeof(t->up), MSG_DONTWAIT);
        if (n > 0) {
            t->up_len = (size_t)n;
            s->progress = true;
        } else if (n == 0 || !would_block()) {
            s->done = true; /* the user closed its end */
        }
    }
    if (!s->done && t->up_off < t->up_len) {
        errno = 0;
        int n = SSL_write(t->ssl, t->up + t->up_off, (int)(t->up_len - t->up_off));
        if (n > 0) {
            t->up_off += (size_t)n;
            s->progress = true;
        } else {
            tls_wait(t, n, s);
        }
    }
}

/* Sleeps until a side can move; false when the local end is gone. */
static bool pump_wait(ef_tls_tunnel *t, const pump_state *s)
{
    short local =
        (short)((t->up_off == t->up_len ? POLLIN : 0) | (t->down_off < t->down_len ? POLLOUT : 0));
    struct pollfd p[2] = {{.fd = t->local_fd, .events = local},
                          {.fd = t->tls_fd, .events = s->tls_events}};
    if (poll(p, 2, -1) < 0)
        return errno == EINTR;
    /* POLLHUP without data: the user closed its end while we waited on TLS. */
    if ((p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) && !(p[0].revents & POLLIN))
        return false;
    return true;
}

static void *pump_main(void *arg)
{
    ef_tls_tunnel *t = arg;
    for (;;) {
        pump_state s = {0};
        pump_down(t, &s);
        if (!s.done)
            pump_up(t, &s);
        if (s.done)
            break;
        if (!s.progress && !pump_wait(t, &s))
            break;
    }
    /* The user first: it reads EOF at once, whatever the server does. */
    close(t->local_fd);
    t->local_fd = -1;
    (void)SSL_shutdown(t->ssl); /* one non-blocking try at close_notify */
    ERR_clear_error();
    close(t->tls_fd);
    t->tls_fd = -1;
    SSL_free(t->ssl);
    t->ssl = NULL;
    SSL_CTX_free(t->ctx);
    t->ctx = NULL;
    ERR_clear_error();
    return NULL;
}

/* ---- open / free --------------------------------------------------------- */

/* Builds the SSL on fd and runs the handshake; t->ssl set on success. */
static int secure(ef_tls_tunnel *t, const char *host, int64_t deadline, const ef_tls_opts *opts,
                  char *err, size_t errlen)
{
    t->ctx = new_ctx(opts, err, errlen);
    if (!t->ctx)
        return EF_EINVAL;
    t->ssl = SSL_new(t->ctx);
    if (!t->ssl || SSL_set_fd(t->ssl, t->tls_fd) != 1 || expect_host(t->ssl, host) != 0) {
        char why[256];
        ssl_reason(why, sizeof(why), "cannot set up the connection");
        ef_errf(err, errlen, "Redis TLS: %s", why);
        return EF_EIO;
    }
    return handshake(t->ssl, t->tls_fd, deadline, err, errlen);
}

/* The socketpair and the pump thread; *fd is the user's end. */
static int start_pump(ef_tls_tunnel *t, int *fd, char *err, size_t errlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        ef_errf(err, errlen, "Redis TLS: socketpair: %s", strerror(errno));
        return EF_EIO;
    }
    (void)fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    t->local_fd = sv[1];
    int rc = pthread_create(&t->thread, NULL, pump_main, t);
    if (rc != 0) {
        close(sv[0]);
        close(sv[1]);
        t->local_fd = -1;
        ef_errf(err, errlen, "Redis TLS: thread: %s", strerror(rc));
        return EF_EIO;
    }
    *fd = sv[0];
    return 0;
}

/* SIGPIPE stays blocked while this thread writes to the server and in the
 * pump thread it starts (which inherits the mask): a server gone mid-write
 * is an EPIPE error, never a signal that kills a process not ignoring it. */
static void sigpipe_block(sigset_t *old)
{
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, old);
}

static void sigpipe_restore(const sigset_t *old)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (!sigismember(old, SIGPIPE) && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

int ef_tls_tunnel_open(const char *host, int port, int timeout_ms, const ef_tls_opts *opts,
                       ef_tls_tunnel **out, int *fd, char *err, size_t errlen)
{
    ef_tls_tunnel *t = ef_calloc(1, sizeof(*t));
    t->tls_fd = t->local_fd = -1;
    sigset_t old;
    sigpipe_block(&old);
    ERR_clear_error();
    int rc = EF_EIO;
    t->tls_fd = tcp_connect(host, port, mono_ms() + timeout_ms, err, errlen);
    if (t->tls_fd < 0)
        goto fail;
    rc = secure(t, host, mono_ms() + timeout_ms, opts, err, errlen);
    if (rc == 0)
        rc = start_pump(t, fd, err, errlen);
    if (rc != 0)
        goto fail;
    sigpipe_restore(&old);
    *out = t;
    return 0;
fail:
    if (t->ssl)
        SSL_free(t->ssl);
    if (t->ctx)
        SSL_CTX_free(t->ctx);
    if (t->tls_fd >= 0)
        close(t->tls_fd);
    ERR_clear_error();
    sigpipe_restore(&old);
    ef_free(t);
    return rc;
}

void ef_tls_tunnel_free(ef_tls_tunnel *t, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!t)
        return;
    pthread_join(t->thread, NULL);
    if (why && whylen && t->why[0])
        snprintf(why, whylen, "%s", t->why);
    ef_free(t);
}
