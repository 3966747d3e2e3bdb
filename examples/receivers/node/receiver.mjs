// A footfall webhook receiver: verifies each webhook's Standard Webhooks signature with
// the official `standardwebhooks` package and prints the event.
//
//   npm ci
//   FOOTFALL_WEBHOOK_SECRET=whsec_... node receiver.mjs        # listens on :9000
//
// Register http://<this host>:9000/hook as the handler's webhook_url; the secret is the
// handler's `secret`, shown once when it is created. A webhook whose signature does not
// verify (tampered, wrong secret, older than 5 minutes) is answered 400 and not processed.
// footfall retries anything but a 2xx, and sends the same `webhook-id` on every retry:
// keep the ids you have processed if an event must act once.

import http from "node:http";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.FOOTFALL_WEBHOOK_SECRET);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    // Verify the raw body exactly as it arrived: parsing and re-serialising breaks it.
    const body = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      event = webhook.verify(body, req.headers);
    } catch (e) {
      console.log(`refused ${req.headers["webhook-id"]}: ${e.message}`);
      res.writeHead(400).end();
      return;
    }
    // The event: amoCRM's shape, footfall's additions under "meta".
    console.log(`verified ${req.headers["webhook-id"]} ${event.event.type_code} lead ${event.event.data.id}: ${JSON.stringify(event)}`);
    res.writeHead(204).end();
  });
});

const port = Number(process.env.PORT || 9000);
server.listen(port, process.env.HOST || "127.0.0.1", () => {
  const a = server.address();
  console.log(`listening on ${a.address}:${a.port}`);
});
