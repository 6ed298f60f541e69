"""fcgi_client.py: a minimal FastCGI client for the bench, so that a pool can
be sent requests without nginx (under valgrind or strace): one request per
connection, as nginx does it (no keep_conn): BEGIN_REQUEST, PARAMS, an empty
PARAMS, STDIN, an empty STDIN; then STDOUT (and STDERR) records until
END_REQUEST.

nginx_params() gives the parameters the stack's nginx sends for a request on
its public listener (nginx/fastcgi.conf, plus the request's headers as
HTTP_*), so that what the worker does is what it does behind nginx."""
import os
import socket
import struct

FCGI_VERSION = 1
FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 1, 3, 4, 5, 6, 7
FCGI_RESPONDER = 1
REQUEST_ID = 1  # one request per connection: always id 1, as nginx sends it


def _record(rtype, content):
    out = []
    for i in range(0, max(len(content), 1), 65535):
        chunk = content[i:i + 65535]
        pad = -len(chunk) % 8
        out.append(struct.pack(">BBHHBx", FCGI_VERSION, rtype, REQUEST_ID, len(chunk), pad) + chunk + b"\0" * pad)
    return b"".join(out)


def _length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def encode_params(params):
    return b"".join(_length(len(k)) + _length(len(v)) + k + v
                    for k, v in ((k.encode(), str(v).encode()) for k, v in params.items()))


def nginx_params(method, uri, headers=None, body=b"", server_port=80, internal=False):
    """What nginx/fastcgi.conf sends for METHOD URI (headers: name -> value,
    passed as HTTP_<NAME>, as nginx passes a client's headers)."""
    path, _, query = uri.partition("?")
    params = {
        "REQUEST_METHOD": method, "REQUEST_URI": uri, "DOCUMENT_URI": path, "SCRIPT_NAME": path,
        "QUERY_STRING": query, "CONTENT_TYPE": (headers or {}).get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)) if body else "", "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_PORT": str(server_port), "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_ID": os.urandom(16).hex(), "PL_INTERNAL": "1" if internal else "0",
    }
    for name, value in (headers or {}).items():
        params["HTTP_" + name.upper().replace("-", "_")] = value
    return params


def request(sock_path, params, body=b"", timeout=60):
    """One request over a new connection to a unix socket: (status, headers
    as a dict of lower-case names, body bytes, stderr bytes). Raises OSError
    when the connection fails or ends before END_REQUEST."""
    msg = (_record(FCGI_BEGIN_REQUEST, struct.pack(">HB5x", FCGI_RESPONDER, 0)) +
           _record(FCGI_PARAMS, encode_params(params)) + _record(FCGI_PARAMS, b""))
    if body:
        msg += _record(FCGI_STDIN, body)
    msg += _record(FCGI_STDIN, b"")
    out, err = [], []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(msg)
        buf = b""
        while True:
            while len(buf) < 8:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("the FastCGI connection ended before END_REQUEST")
                buf += chunk
            _, rtype, _, clen, pad = struct.unpack(">BBHHBx", buf[:8])
            while len(buf) < 8 + clen + pad:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("the FastCGI connection ended inside a record")
                buf += chunk
            content, buf = buf[8:8 + clen], buf[8 + clen + pad:]
            if rtype == FCGI_STDOUT:
                out.append(content)
            elif rtype == FCGI_STDERR:
                err.append(content)
            elif rtype == FCGI_END_REQUEST:
                break
    raw = b"".join(out)
    head, _, resp_body = raw.partition(b"\r\n\r\n")
    headers, status = {}, 200
    for line in head.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if "status" in headers:
        try:
            status = int(headers["status"].split()[0])
        except (ValueError, IndexError):
            status = 0
    return status, headers, resp_body, b"".join(err)
