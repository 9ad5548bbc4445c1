"""A real HTTP server on 127.0.0.1 for the weight-store tests: serves files, answers 404, can cut a
transfer short, can be slow, and counts requests."""

import http.server
import socket
import threading
import time
from collections import Counter


class WeightServer:
    """Serve ``files`` (URL path -> bytes) on an ephemeral loopback port.

    ``truncate`` holds paths whose transfer announces the full length and then drops the
    connection halfway; ``delay`` seconds pass before each answer (to make clients overlap);
    ``trickle`` holds paths sent one byte per ``trickle_interval`` seconds (a dying mirror), and
    ``trickle_headers`` paths whose status line and headers come that way, then never end (for at
    most ``trickle_limit`` seconds, so the server always stops).
    """

    def __init__(self):
        self.files = {}
        self.truncate = set()
        self.trickle = set()
        self.trickle_headers = set()
        self.trickle_interval = 1.0
        self.trickle_limit = 120.0
        self.delay = 0.0
        self.requests = Counter()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests[self.path] += 1
                time.sleep(server.delay)
                if self.path in server.trickle_headers:
                    self.close_connection = True
                    started, head = time.monotonic(), b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100000
                    try:
                        for i in range(len(head)):
                            if time.monotonic() - started > server.trickle_limit:
                                return
                            self.wfile.write(head[i : i + 1])
                            self.wfile.flush()
                            time.sleep(server.trickle_interval)
                    except OSError:  # the client gave up
                        pass
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if self.path in server.trickle:
                    try:
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(server.trickle_interval)
                    except OSError:  # the client gave up
                        pass
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def total_requests(self):
        return sum(self.requests.values())

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def closed_port_url():
    """A loopback URL where nothing listens (connection refused): a mirror that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return "http://127.0.0.1:%d" % port
