"""A threading HTTP server for loopback use (the fake's server and the CLI's redirect catcher)."""

from __future__ import annotations

import http.server
import socketserver

__all__ = ["LoopbackHTTPServer"]


class LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """`ThreadingHTTPServer` with daemon threads that binds without a DNS look-up."""

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can take seconds where DNS is poor.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])
