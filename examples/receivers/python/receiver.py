"""A footfall webhook receiver: verifies each webhook's Standard Webhooks signature with
the official `standardwebhooks` package and prints the event.

    pip install -r requirements.txt
    FOOTFALL_WEBHOOK_SECRET=whsec_... python3 receiver.py        # listens on :9000

Register http://<this host>:9000/hook as the handler's webhook_url; the secret is the
handler's `secret`, shown once when it is created. A webhook whose signature does not
verify (tampered, wrong secret, older than 5 minutes) is answered 400 and not processed.
footfall retries anything but a 2xx, and sends the same `webhook-id` on every retry:
keep the ids you have processed if an event must act once.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["FOOTFALL_WEBHOOK_SECRET"])


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            event = webhook.verify(body, dict(self.headers))
        except WebhookVerificationError as e:
            print(f"refused {self.headers.get('webhook-id')}: {e}", flush=True)
            self.send_response(400)
            self.end_headers()
            return
        # The event: amoCRM's shape, footfall's additions under "meta".
        kind = event["event"]["type_code"]
        lead = event["event"]["data"]["id"]
        print(f"verified {self.headers['webhook-id']} {kind} lead {lead}: {json.dumps(event)}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "9000"))
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), port), Receiver)
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
