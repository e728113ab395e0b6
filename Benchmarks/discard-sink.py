#!/usr/bin/env python3
"""A TCP listener that reads and discards everything (openbao-overhead.sh, variant D): what
OpenBao's socket audit device costs OpenBao with a reader that does nothing."""
import socket
import sys
import threading

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)


def drain(c):
    while c.recv(1 << 20):
        pass


while True:
    c, _ = s.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
