#!/usr/bin/env python3
"""A hostile HTTP server on 127.0.0.1 for tests/spec/http_hostile_spec.lua (issue 13): streams
that never end or trickle, compressed and wrongly encoded bodies, redirects, a last NDJSON
line without its newline. Python 3 standard library only.

    hostile_http_server.py --port-file F

Paths (query values in brackets):
  /ndjson/no-final-newline[close=1]  two JSON lines, the last without "\\n" (close=1: the end
                                     is the connection closing, else Content-Length)
  /ndjson/crlf-at-limit[n, split=1]  one JSON line of exactly n bytes, then CRLF (split=1:
                                     the CRLF a moment later, in a second chunk)
  /ndjson/endless, /sse/endless      frames as fast as the client takes them, for ever
  /sse/comments[every]               ": keep-alive" comment lines every `every` s, for ever
  /sse/trickle[every]                an SSE event one byte every `every` s, for ever
  /gzip/json, /gzip/sse, /gzip/ndjson  gzip-encoded whatever the client asked for
  /encoding/unknown                  Content-Encoding: x-hostile
  /encoding/corrupt-gzip             Content-Encoding: gzip, body not gzip
  /redirect                          302 to /redirected on this server
  /error/endless                     500 with a text that never ends
  /echo                              the request's headers as JSON
  /hits                              {path: times requested}
"""
import argparse
import gzip
import json
import os
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HITS = {}
HITS_LOCK = threading.Lock()

SSE_EVENT = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,' \
            b'"delta":{"type":"text_delta","text":"more and more "}}\n\n'
NDJSON_LINE = b'{"message":{"role":"assistant","content":"more and more "},"done":false}\n'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.dispatch()

    def start(self, status, content_type, headers=None, length=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if length is None:
            self.send_header("Connection", "close")     # the body ends when the connection does
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def whole(self, status, content_type, data, headers=None):
        self.start(status, content_type, headers, len(data))
        self.wfile.write(data)

    def send(self, data, pause=0.0):
        self.wfile.write(data)
        self.wfile.flush()
        if pause:
            time.sleep(pause)

    def dispatch(self):
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with HITS_LOCK:
            HITS[url.path] = HITS.get(url.path, 0) + 1
        try:
            self.route(url.path, q)
        except (BrokenPipeError, ConnectionResetError):
            pass                                          # the client gave up: as it should

    def route(self, path, q):
        every = float(q.get("every", "0.2"))
        if path == "/ndjson/no-final-newline":
            data = b'{"n":1}\n{"n":2,"done":true}'
            if q.get("close") == "1":
                self.start(200, "application/x-ndjson")
                self.send(data)
            else:
                self.whole(200, "application/x-ndjson", data)
        elif path == "/ndjson/crlf-at-limit":
            n = int(q["n"])
            line = b'"' + b"x" * (n - 2) + b'"'
            self.start(200, "application/x-ndjson")
            if q.get("split") == "1":
                self.send(line, 0.3)
                self.send(b"\r\n")
            else:
                self.send(line + b"\r\n")
        elif path == "/ndjson/endless":
            self.start(200, "application/x-ndjson")
            chunk = NDJSON_LINE * 200
            while True:
                self.send(chunk)
        elif path == "/sse/endless":
            self.start(200, "text/event-stream")
            chunk = SSE_EVENT * 200
            while True:
                self.send(chunk)
        elif path == "/sse/comments":
            self.start(200, "text/event-stream")
            while True:
                self.send(b": keep-alive\n", every)
        elif path == "/sse/trickle":
            self.start(200, "text/event-stream")
            while True:
                for i in range(len(SSE_EVENT)):
                    self.send(SSE_EVENT[i:i + 1], every)
        elif path == "/gzip/json":
            self.whole(200, "application/json", gzip.compress(b'{"version":"0.32.0"}\n'),
                       {"Content-Encoding": "gzip"})
        elif path in ("/gzip/sse", "/gzip/ndjson"):
            sse = path == "/gzip/sse"
            self.start(200, "text/event-stream" if sse else "application/x-ndjson", {"Content-Encoding": "gzip"})
            z = zlib.compressobj(wbits=31)                # a gzip stream, flushed per frame
            for i in range(3):
                frame = SSE_EVENT if sse else b'{"n":%d}\n' % i
                self.send(z.compress(frame) + z.flush(zlib.Z_SYNC_FLUSH), 0.05)
            self.send(z.flush())
        elif path == "/encoding/unknown":
            self.whole(200, "application/json", b'{"version":"0.32.0"}', {"Content-Encoding": "x-hostile"})
        elif path == "/encoding/corrupt-gzip":
            self.whole(200, "application/json", b'{"version":"0.32.0"} not gzip at all',
                       {"Content-Encoding": "gzip"})
        elif path == "/redirect":
            port = self.server.server_address[1]
            self.whole(302, "text/html", b"<html>Moved</html>",
                       {"Location": "http://127.0.0.1:%d/redirected" % port})
        elif path == "/error/endless":
            self.start(500, "text/plain")
            self.send(b"internal error: ")
            while True:
                self.send(b"x" * 65536)
        elif path == "/echo":
            self.whole(200, "application/json", json.dumps({k.lower(): v for k, v in self.headers.items()}).encode())
        elif path == "/hits":
            with HITS_LOCK:
                data = json.dumps(HITS).encode()
            self.whole(200, "application/json", data)
        else:
            self.whole(404, "application/json", b'{"error":"not found"}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
