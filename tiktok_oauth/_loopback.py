"""A threading HTTP server for loopback use (the fake's server and the CLI's redirect catcher)."""

from __future__ import annotations

import http.server
import socketserver

__all__ = ["LoopbackHTTPServer"]


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """`ThreadingHTTPServer` with daemon threads that binds without a DNS look-up."""

    daemon_threads = True
    #: socketserver's default listen backlog is 5: 16 clients at once already saw refused and reset
    #: connections (issue 8, item 13). The kernel caps this at `net.core.somaxconn`.
    request_queue_size = 1024

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can take seconds where DNS is poor.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])
