#!/usr/bin/env python3
"""An SMTP server for the Notifier tests: aiosmtpd (pip install aiosmtpd), or the standard
library's smtpd module on Python 3.11 and older when aiosmtpd is missing.

Usage: smtp_receiver.py OUT_DIR

Listens on 127.0.0.1 at a port the kernel picks and prints that port as the first line of
standard output (then the implementation used, on the second). Each message received is
written to OUT_DIR/NNNN.json as {"mail_from", "rcpt_tos", "data_b64"} (the DATA bytes after
dot-unstuffing), atomically. A recipient whose local part starts with "reject" gets a 550
(at RCPT TO with aiosmtpd, at the end of DATA with smtpd). Exits when its parent process
goes away, or after 120 seconds.
"""
import base64
import json
import os
import signal
import sys
import threading
import time
import warnings

# Foundation's Process starts children with most signals blocked; take SIGTERM again.
signal.pthread_sigmask(signal.SIG_SETMASK, [])

out_dir = sys.argv[1]
lock = threading.Lock()
count = 0


def record(mail_from, rcpt_tos, data):
    global count
    with lock:
        n = count
        count += 1
    tmp = os.path.join(out_dir, ".%04d.tmp" % n)
    with open(tmp, "w") as f:
        json.dump({"mail_from": mail_from, "rcpt_tos": list(rcpt_tos),
                   "data_b64": base64.b64encode(data).decode()}, f)
    os.rename(tmp, os.path.join(out_dir, "%04d.json" % n))


def watchdog(parent):
    deadline = time.time() + 1800   # a safety net only: it also ends with its parent; a loaded test run can take minutes to reach the test
    while time.time() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


threading.Thread(target=watchdog, args=(os.getppid(),), daemon=True).start()

try:
    import asyncio
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.lower().startswith("reject"):
                return "550 5.1.1 Recipient rejected by the test server"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            record(envelope.mail_from, envelope.rcpt_tos, envelope.original_content or envelope.content)
            return "250 Message accepted for delivery"

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    handler = Handler()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname="custos-test-smtp", loop=loop), host="127.0.0.1", port=0))
    print(server.sockets[0].getsockname()[1], flush=True)
    print("aiosmtpd", flush=True)
    loop.run_forever()
except ImportError:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import asyncore
            import smtpd
    except ImportError:
        sys.stderr.write("smtp_receiver.py: neither aiosmtpd nor the smtpd module is available to %s; "
                         "install it with: python3 -m pip install aiosmtpd\n" % sys.executable)
        sys.exit(3)

    class Server(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
            if any(r.lower().startswith("reject") for r in rcpttos):
                return "550 5.1.1 Recipient rejected by the test server"
            # smtpd joins lines with LF and drops the last line end; give back what was sent.
            record(mailfrom, rcpttos, data.replace(b"\n", b"\r\n") + b"\r\n")
            return None

    s = Server(("127.0.0.1", 0), None, decode_data=False)
    print(s.socket.getsockname()[1], flush=True)
    print("smtpd", flush=True)
    asyncore.loop(timeout=0.5)
