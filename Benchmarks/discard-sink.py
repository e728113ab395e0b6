#!/usr/bin/env python3
"""A listener that reads and discards everything (openbao-overhead.sh, variants D and V): what
OpenBao's socket audit device costs OpenBao with a reader that does nothing. The argument is a
loopback TCP port, or the path of a Unix socket to create."""
import os
import socket
import sys
import threading

where = sys.argv[1]
if where.isdigit():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(where)))
else:
    if os.path.exists(where):
        os.unlink(where)
    s = socket.socket(socket.AF_UNIX)
    s.bind(where)
s.listen(8)


def drain(c):
    while c.recv(1 << 20):
        pass


while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
