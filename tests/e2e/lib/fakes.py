"""lib/fakes.py -- what the fake platform APIs (lib/fake_telegram.py,
lib/fake_graph.py) share, and the per-test constructors of fakes.

  FakeServer      a ThreadingHTTPServer on a free loopback port, served from a
                  daemon thread; one Condition guards the fake's state;
                  requests (recorded calls), wait_for(), close(), a context
                  manager
  FakeHandler     the request handler base: quiet, HTTP/1.1, GET and POST go to
                  _handle(method); send_json() answers, drop() closes the
                  connection unanswered (a network failure)
  closed_at_end   registers any fake with close() to be closed when the test
                  ends
  fake_telegram() / fake_graph()   a FakeTelegram / FakeGraph closed at the end
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import stack


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, http_method):
        raise NotImplementedError

    def drop(self):
        """Closes the connection without an answer."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def send_json(self, status, obj, content_type="application/json", ensure_ascii=False):
        data = json.dumps(obj, ensure_ascii=ensure_ascii).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


class FakeServer:
    """Subclasses set `handler` and `label`, set up their own state, then call
    FakeServer.__init__ (which starts serving)."""

    handler = FakeHandler
    label = "fake server"

    def __init__(self, port=0, path=""):
        self.cond = threading.Condition()
        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self.handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d%s" % (self.port, path)
        self._thread = threading.Thread(target=self.server.serve_forever, name=self.label,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _wait_context(self):
        """Appended to a wait_for timeout message."""
        return ""

    def wait_for(self, predicate, timeout=10.0, what="condition"):
        """Polls predicate() until it returns a true value (returned)."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("%s: timed out after %.1fs waiting for %s%s" %
                                     (self.label, timeout, what, self._wait_context()))
            time.sleep(0.02)


def closed_at_end(fake):
    """Registers a fake server (anything with close() and url) to be closed
    when the test ends; returns it."""
    class _Closer:
        def cleanup(self, ok):
            fake.close()

        def __repr__(self):
            return "%s(%s)" % (type(fake).__name__, fake.url)
    stack.register(_Closer())
    return fake


def fake_telegram(**kw):
    """A FakeTelegram closed when the test ends."""
    from .fake_telegram import FakeTelegram
    return closed_at_end(FakeTelegram(**kw))


def fake_graph(**kw):
    """A FakeGraph closed when the test ends."""
    from .fake_graph import FakeGraph
    return closed_at_end(FakeGraph(**kw))


def fake_telegram_int(v):
    """An integer parameter as the fake recorded it (JSON number or text)."""
    if v is None or v == "" or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def fake_telegram_offset(req):
    """The offset a recorded getUpdates asked for (0 when none)."""
    v = fake_telegram_int(req.params.get("offset"))
    return 0 if v is None else v


def wait_offset(tg, offset, timeout=20):
    """Until the gateway called getUpdates with an offset >= the given one
    (it confirmed every update below it); returns those calls."""
    return tg.wait_for(lambda: [r for r in tg.calls("getUpdates")
                                if fake_telegram_offset(r) >= offset],
                       timeout=timeout, what="getUpdates with offset >= %d" % offset)
