"""Real local servers that stand in for notification channels: an HTTP endpoint (a webhook, Slack's
incoming webhooks) and an SMTP server. Both listen on 127.0.0.1 on a free port and keep what they receive."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookServer:
    """Answers every POST with ``status`` and records path, headers and the JSON body."""

    def __init__(self, status: int = 200) -> None:
        server = self
        self.status = status
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.received.append({"path": self.path, "headers": dict(self.headers),
                                        "body": json.loads(body or b"null")})
                server.arrived.set()
                self.send_response(server.status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if server.status < 300 else b"refused")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self) -> list[Any]:
        return [r["body"] for r in self.received]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SmtpServer:
    """Enough of SMTP (RFC 5321) for ``smtplib``: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.

    Each accepted mail is kept as ``{"from", "to", "auth", "message"}`` (an ``email.message.EmailMessage``)."""

    def __init__(self) -> None:
        server = self
        self.mails: list[dict[str, Any]] = []

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, *lines: str) -> None:
                self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())
                self.wfile.flush()

            def handle(self) -> None:
                self.reply("220 localhost test SMTP server")
                mail: dict[str, Any] = {"from": None, "to": [], "auth": None}
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    command = raw.decode(errors="replace").rstrip("\r\n")
                    verb, _, arg = command.partition(" ")
                    verb = verb.upper()
                    if verb == "EHLO":
                        self.reply("250-localhost", "250-AUTH PLAIN", "250 8BITMIME")
                    elif verb == "HELO":
                        self.reply("250 localhost")
                    elif verb == "AUTH":
                        mechanism, _, token = arg.partition(" ")
                        if mechanism.upper() != "PLAIN":
                            self.reply("504 5.5.4 only PLAIN")
                            continue
                        if not token:
                            self.reply("334 ")
                            token = self.rfile.readline().decode().strip()
                        _, user, password = base64.b64decode(token).decode().split("\0")
                        mail["auth"] = (user, password)
                        self.reply("235 2.7.0 Authentication successful")
                    elif verb == "MAIL":
                        mail["from"] = arg.split(":", 1)[1].strip().strip("<>").split(">")[0]
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        mail["to"].append(arg.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        lines = []
                        while True:
                            line = self.rfile.readline()
                            if line in (b".\r\n", b".\n", b""):
                                break
                            lines.append(line[1:] if line.startswith(b"..") else line)
                        message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                        server.mails.append({**mail, "to": list(mail["to"]), "message": message})
                        mail = {"from": None, "to": [], "auth": mail["auth"]}
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 5.5.2 command not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.tcp = Server(("127.0.0.1", 0), Handler)
        self.port = self.tcp.server_address[1]
        self.thread = threading.Thread(target=self.tcp.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()
