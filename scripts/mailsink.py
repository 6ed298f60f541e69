#!/usr/bin/python3
"""mailsink.py DIR HOST PORT [LOG]: the stack's mail sink, an SMTP server
(Debian's python3-aiosmtpd) that delivers nowhere: it keeps each message it
accepts as one file DIR/<UTC time>-<n>.eml (written whole, then renamed, so
a reader never sees half a message). Its output goes to LOG, opened again on
SIGUSR1 (after logrotate). Started and stopped by ./pilotlight
(scripts/mail.sh); `./pilotlight mail` prints what it kept."""
import itertools
import os
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            name = "%s-%06d.eml" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), next(self.counter))
        path = os.path.join(self.directory, name)
        with open(path + ".tmp", "wb") as f:
            f.write(b"X-Pilotlight-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK: kept as %s" % name


def reopen(log):
    """stdout and stderr to the end of log, by name (the file may have been rotated)."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    for std in (1, 2):
        os.dup2(fd, std)
    os.close(fd)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit("usage: mailsink.py DIR HOST PORT [LOG]")
    directory, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) == 5:
        log = sys.argv[4]
        reopen(log)
        signal.signal(signal.SIGUSR1, lambda *_: reopen(log))
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Keep(directory), hostname=host, port=port, data_size_limit=10 * 1024 * 1024)
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("mailsink: listening on %s:%d, keeping mail in %s" % (host, port, directory), flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
