/*
 * tls_tunnel.h -- a TLS client connection (OpenSSL) handed to a plaintext
 * library as a local socket: what lets hiredis 0.14, which has no TLS of
 * its own, talk to a rediss:// server.
 *
 * ef_tls_tunnel_open() connects TCP, runs the TLS handshake with the
 * server's certificate verified (against the system CA store, or the CA
 * file given) and its name checked against the host, then returns one end
 * of a socketpair. A pump thread per tunnel copies bytes between the other
 * end and the TLS connection both ways. Closing the returned fd ends the
 * pump and the TLS connection; the server closing (or any TLS error) closes
 * the pump's end, so the user of the fd reads EOF.
 *
 * It never does cryptography itself (OpenSSL does), never turns
 * verification off and never prints: errors come back as a code and a
 * message for the caller to log.
 *
 * Thread model: open and free run on the thread that owns the fd; the pump
 * thread owns the TLS connection and both of its sockets until it ends.
 */
#ifndef EF_STORE_TLS_TUNNEL_H
#define EF_STORE_TLS_TUNNEL_H

#include <stddef.h>

typedef struct ef_tls_tunnel ef_tls_tunnel;

/* Files for the TLS client; NULL or "" leaves a setting unused. */
typedef struct ef_tls_opts {
    const char *ca_file;   /* PEM CAs trusted instead of the system store */
    const char *cert_file; /* PEM client certificate (chain), with key_file */
    const char *key_file;  /* PEM private key of cert_file */
} ef_tls_opts;

/*
 * Connects to host:port (TCP connect bounded by timeout_ms, the handshake
 * by timeout_ms again) and starts the pump. On success returns 0, *out the
 * tunnel and *fd the plaintext end (the caller owns it, e.g. through
 * redisConnectFd, and closes it before ef_tls_tunnel_free). On failure
 * returns EF_EIO (or EF_ETIMEDOUT, or EF_EINVAL for unusable files), writes
 * neither out-param and puts a message in err beginning "Redis TLS: " (e.g.
 * "Redis TLS: certificate verify failed: unable to get local issuer
 * certificate").
 */
int ef_tls_tunnel_open(const char *host, int port, int timeout_ms, const ef_tls_opts *opts,
                       ef_tls_tunnel **out, int *fd, char *err, size_t errlen);

/* Waits for the pump to end and frees the tunnel. Close the fd of open
 * first: that is what ends the pump. When the TLS side ended the tunnel
 * (the server closed it, or a TLS error such as the server refusing a
 * missing client certificate), why (if not NULL) gets the reason, else "".
 * NULL is a no-op. */
void ef_tls_tunnel_free(ef_tls_tunnel *t, char *why, size_t whylen);

#endif
