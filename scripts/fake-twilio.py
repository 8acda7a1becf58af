#!/usr/bin/env python3
"""A stand-in for Twilio's Messages API, for the README walkthrough.

Listens on 127.0.0.1:8089 (or the port given), prints every message Switchboard sends, and
answers 201 with a JSON body shaped like Twilio's. Standard library only.
"""
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        form = parse_qsl(body, keep_blank_values=True)
        print(f"POST {self.path}", flush=True)
        for k, v in form:
            print(f"  {k} = {v}", flush=True)
        fields = dict(form)
        sid = "SM" + uuid.uuid4().hex
        reply = {
            "sid": sid,
            "status": "queued",
            "to": fields.get("To"),
            "from": fields.get("From"),
            "body": fields.get("Body"),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
        }
        data = json.dumps(reply).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        # The account resource Switchboard's channel health check reads.
        sid = self.path.rsplit("/", 1)[-1].removesuffix(".json")
        data = json.dumps({"sid": sid, "status": "active", "type": "Full"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8089
    print(f"fake Twilio API on http://127.0.0.1:{port}", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
