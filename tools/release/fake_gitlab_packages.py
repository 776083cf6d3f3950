#!/usr/bin/env python3
"""A stand-in for GitLab's generic package registry API on loopback, for rehearse-publish.sh:
PUT and GET /api/v4/projects/<id>/packages/generic/<package>/<version>/<file>, files kept under a
directory. Uploads need a JOB-TOKEN header, downloads a JOB-TOKEN or PRIVATE-TOKEN header (as
GitLab's docs, user/packages/generic_packages, describe); anything else is 401 or 404. It is no
GitLab: it proves our scripts' requests have the documented shape, not that GitLab accepts them.

    fake_gitlab_packages.py PORT DIRECTORY TOKEN
"""
import http.server
import pathlib
import re
import sys

PATH = re.compile(r"^/api/v4/projects/(\d+)/packages/generic/([\w.-]+)/([\w.+-]+)/([\w.-]+)$")


class Handler(http.server.BaseHTTPRequestHandler):
    def _target(self, headers):
        m = PATH.match(self.path)
        if not m:
            self.send_error(404)
            return None
        if not any(self.headers.get(h) == self.server.token for h in headers):
            self.send_error(401)
            return None
        return self.server.root.joinpath(*m.groups())

    def do_PUT(self):
        target = self._target(["JOB-TOKEN"])
        if target is None:
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"message":"201 Created"}')

    def do_GET(self):
        target = self._target(["JOB-TOKEN", "PRIVATE-TOKEN"])
        if target is None:
            return
        if not target.is_file():
            self.send_error(404)
            return
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print(fmt % args, flush=True)


def main():
    port, root, token = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.root, server.token = root, token
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
