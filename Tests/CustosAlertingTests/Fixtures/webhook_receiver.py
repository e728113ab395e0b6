#!/usr/bin/env python3
"""A webhook receiver for the Notifier tests (stdlib only).

Usage: webhook_receiver.py OUT_DIR [STATUSES]

Listens on 127.0.0.1 at a port the kernel picks and prints that port as the first line
of standard output. Every request is answered with the next status of STATUSES (a comma
list, default 200; the last one repeats) after it has been written to OUT_DIR/NNNN.json
as {"method", "path", "headers" (names lowercased), "body_b64", "status"}. Files appear
atomically (written, then renamed). Exits when its parent process goes away, or after
120 seconds, so a crashed test never leaves it behind.
"""
import base64
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Foundation's Process starts children with most signals blocked; take SIGTERM again.
signal.pthread_sigmask(signal.SIG_SETMASK, [])

out_dir = sys.argv[1]
statuses = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "200").split(",")]
lock = threading.Lock()
count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_POST(self):
        global count
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            n = count
            count += 1
        status = statuses[min(n, len(statuses) - 1)]
        record = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_b64": base64.b64encode(body).decode(),
            "status": status,
        }
        tmp = os.path.join(out_dir, ".%04d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out_dir, "%04d.json" % n))
        reply = b'{"ok":true}' if status < 300 else b'{"error":"test receiver says no"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, fmt, *args):
        pass


def watchdog(parent):
    deadline = time.time() + 1800   # a safety net only: it also ends with its parent; a loaded test run can take minutes to reach the test
    while time.time() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


threading.Thread(target=watchdog, args=(os.getppid(),), daemon=True).start()
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
