"""ws.py -- a minimal WebSocket client (RFC 6455) over the standard library,
for the e2e tests of /ws/console and /ws/chat: the upgrade with a
subprotocol, masked text frames out, text/ping/close frames in (pings are
answered), JSON helpers with timeouts. Not a general-purpose client."""

import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    """The server closed the socket: .code and .reason."""

    def __init__(self, code, reason):
        super().__init__("closed %s %r" % (code, reason))
        self.code = code
        self.reason = reason


class Refused(Exception):
    """The upgrade was refused: .status and the first line."""

    def __init__(self, status, line):
        super().__init__("upgrade refused: %s" % line)
        self.status = status


class WS:
    def __init__(self, port, path, protocol, host="127.0.0.1", timeout=10.0, rcvbuf=None):
        """rcvbuf: a small receive buffer, set before connecting (a slow reader)."""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % (path, host, port, key))
        if protocol:
            req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
        self.sock.sendall((req + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Refused(0, "connection closed during the upgrade")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if status != 101:
            self.sock.close()
            raise Refused(status, lines[0])
        hdrs = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip()
                for ln in lines[1:] if ":" in ln}
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise Refused(status, "bad Sec-WebSocket-Accept")
        self.protocol = hdrs.get("sec-websocket-protocol")
        self.closed = None

    # ---- frames ----------------------------------------------------------------

    def send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def send_text(self, s):
        self.send_frame(0x1, s.encode())

    def send_json(self, o):
        self.send_text(json.dumps(o, ensure_ascii=False))

    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(1006, "connection lost")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=10.0):
        """(opcode, payload) of the next frame; pings are answered here."""
        deadline = time.time() + timeout
        while True:
            b0, b1 = self._read(2, deadline)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            payload = self._read(n, deadline)
            op = b0 & 0x0F
            if op == 0x9:
                self.send_frame(0xA, payload)
                continue
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.closed = (code, payload[2:].decode("utf-8", "replace"))
                raise Closed(code, self.closed[1])
            return op, payload

    def recv_json(self, timeout=10.0):
        op, payload = self.recv_frame(timeout)
        return json.loads(payload.decode())

    def wait_for(self, pred, timeout=10.0, what="a frame"):
        """The first JSON frame for which pred is true: one kept in .seen by
        an earlier wait (taken out of it), else the next that comes (others
        are kept in .seen); TimeoutError naming what otherwise."""
        deadline = time.time() + timeout
        self.seen = getattr(self, "seen", [])
        for o in self.seen:
            if pred(o):
                self.seen.remove(o)
                return o
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("%s not received within %.0f s (saw %r)" %
                                   (what, timeout, self.seen[-5:]))
            try:
                o = self.recv_json(left)
            except TimeoutError:
                continue
            if pred(o):
                return o
            self.seen.append(o)

    def close(self):
        try:
            self.send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()
