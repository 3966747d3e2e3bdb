"""An existing amoCRM client library from PyPI (aioamocrm, pinned in requirements.txt),
pointed at a live footfall as an integrator would: `base_url` = footfall's public URL, the
account's token as a `LongLivedToken`. Each step asserts on footfall's answer as the
library returns it: its typed resources where it has them (pipelines, statuses, leads,
notes), its `request()` for the amoCRM routes it has no resource for (Unsorted, webhooks).

footfall's own set-up (a site, a form, a browser's page views) goes through footfall's HTTP
API directly, as a browser or the console would.

Run: python3 tests/client/amocrm_client.py BINARY (scripts/test.sh does).
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import http.server
import queue
import threading

from aioamocrm import (AmoCRMClient, AmoCRMError, Contact, CustomFieldValue, CustomFieldValues,
                       Embedded, LongLivedToken, Lead, Note, ValidationError, parse_webhook)
from standardwebhooks.webhooks import Webhook as SignedWebhook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/debug/footfall"))
TOKEN = "client-test-token-0123456789abcdef"
PASSED = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(name):
    def wrap(fn):
        async def run(*args):
            result = await fn(*args)
            PASSED.append(name)
            print(f"  ok  {name}", flush=True)
            return result
        return run
    return wrap


def raw(base, method, path, body=None, content_type="application/json"):
    """footfall's own API (set-up only), or a browser's form submission."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36")
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=10) as res:
        text = res.read().decode()
        return json.loads(text) if text else None


def start_footfall(tmp):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = os.path.join(tmp, "config.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
bind = "127.0.0.1:{port}"
public_url = "{base}"
static_dir = "{os.path.join(ROOT, 'static')}"
workers = 1

[delivery]
allow_private_targets = true

[[accounts]]
account_id = 30441694
subdomain = "clienttest"
token = "{TOKEN}"
""")
    log = open(os.path.join(tmp, "footfall.log"), "w")
    proc = subprocess.Popen([BIN, "--config", config], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            return proc, base
        except Exception:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"footfall did not start; see {log.name}")


def main():
    tmp = tempfile.mkdtemp(prefix="footfall-client-")
    proc, base = start_footfall(tmp)
    try:
        asyncio.run(run(base))
    except (AssertionError, AmoCRMError) as e:
        print(f"client library test FAILED after {len(PASSED)} steps: {e!r}", flush=True)
        with open(os.path.join(tmp, "footfall.log")) as f:
            print(f.read()[-3000:])
        sys.exit(1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"client library test: aioamocrm 0.1.1, {len(PASSED)} steps passed", flush=True)


async def run(base):
    async with AmoCRMClient(auth=LongLivedToken(TOKEN), base_url=base, rate_limit=None) as amo:
        await steps(amo, base)


async def steps(amo, base):
    @step("pipelines.list: the account's pipelines with their statuses")
    async def pipelines():
        found = await amo.pipelines.list()
        assert found and found[0].embedded.statuses, found
        return found[0]

    pipeline = await pipelines()
    pid = pipeline.id
    working = [s for s in pipeline.embedded.statuses if s.type == 0 and s.id not in (142, 143)]
    first, second = working[0].id, working[1].id

    @step("pipelines.statuses: a pipeline's statuses, with colours")
    async def statuses():
        listed = await amo.pipelines.statuses(pid)
        assert {s.id for s in listed} >= {first, second, 142, 143}, listed
        assert all(s.color and s.color.startswith("#") for s in listed), listed
        one = await amo.request("GET", f"leads/pipelines/{pid}/statuses/{second}")
        assert one["id"] == second and one["pipeline_id"] == pid, one

    await statuses()

    # footfall's own set-up: a site, a form; a browser browses, three people send the form.
    site = raw(base, "POST", "/api/v4/sites", [{"name": "Shop", "url": "https://shop.example"}])["_embedded"]["sites"][0]
    form = raw(base, "POST", "/api/v4/forms", [{"name": "Contact", "site_id": site["id"], "pipeline_id": pid,
                                              "success_url": "https://shop.example/thanks"}])["_embedded"]["forms"][0]
    beacon = raw(base, "POST", "/v1/collect", {"site": site["key"], "vid": None, "url": "https://shop.example/pricing",
                                               "referrer": "", "title": "Pricing"}, content_type="text/plain;charset=UTF-8")
    visitor_uid = beacon["vid"]
    for i, name in enumerate(["Anna", "Boris", "Vera"]):
        raw(base, "POST", f"/v1/forms/{form['id']}/submit",
            {"vid": None, "page": "https://shop.example/contact",
             "fields": {"name": name, "phone": f"+7 900 000-00-0{i}", "email": f"{name.lower()}@example.com"}},
            content_type="text/plain;charset=UTF-8")

    @step("GET leads/unsorted filtered by pipeline and category; GET leads/unsorted/summary")
    async def unsorted():
        answer = await amo.request("GET", "leads/unsorted", params={
            "filter": {"pipeline_id": pid, "category": ["forms"]}, "order": {"created_at": "asc"}})
        entries = answer["_embedded"]["unsorted"]
        assert len(entries) == 3, answer
        assert entries[0]["metadata"]["form_id"] == form["id"], entries[0]
        summary = await amo.request("GET", "leads/unsorted/summary", params={"filter": {"pipeline_id": pid}})
        assert summary["total"] == 3 and summary["categories"]["forms"]["total"] == 3, summary
        return entries

    entries = await unsorted()

    @step("POST leads/unsorted/{uid}/accept into a stage: the lead and its contact in _embedded")
    async def accept(uid):
        answer = await amo.request("POST", f"leads/unsorted/{uid}/accept", json={"user_id": 0, "status_id": first})
        assert answer["status_id"] == first, answer
        assert answer["_embedded"]["leads"][0]["id"] and answer["_embedded"]["contacts"][0]["id"], answer
        return answer["_embedded"]["leads"][0]["id"]

    anna = await accept(entries[0]["uid"])
    boris = await accept(entries[1]["uid"])

    @step("DELETE leads/unsorted/{uid}/decline: the lead is lost")
    async def decline():
        await amo.request("DELETE", f"leads/unsorted/{entries[2]['uid']}/decline", json={"user_id": 0})
        lead = await amo.leads.get(entries[2]["_embedded"]["leads"][0]["id"])
        assert lead.status_id == 143, lead

    await decline()

    @step("leads.get_page with=contacts and filtered by pipeline")
    async def leads_with_contacts():
        page = await amo.leads.get_page(with_=["contacts"], filter={"pipeline_id": pid})
        assert len(page.items) == 3, page
        assert all(l.embedded.contacts for l in page.items), page

    await leads_with_contacts()

    @step("leads.update: the library's batch update moves and renames")
    async def batch_update():
        refs = await amo.leads.update([
            Lead(id=anna, name="Anna's order", price=1500, responsible_user_id=1),
            Lead(id=boris, status_id=second, pipeline_id=pid),
        ])
        assert {r.id for r in refs} == {anna, boris}, refs
        assert all(r.updated_at for r in refs), refs
        assert (await amo.leads.get(anna)).name == "Anna's order"
        assert (await amo.leads.get(boris)).status_id == second

    await batch_update()

    @step("leads.update of a lead as fetched (with=contacts): the library sends back every field it read")
    async def fetched_and_sent_back():
        lead = await amo.leads.get(anna, with_="contacts")
        lead.name = "Anna's order, again"
        refs = await amo.leads.update([lead])
        assert [r.id for r in refs] == [anna], refs
        again = await amo.leads.get(anna)
        assert again.name == "Anna's order, again" and again.created_at == lead.created_at, again

    await fetched_and_sent_back()

    @step("leads.get_page filtered by status (filter[statuses]), by id, ordered")
    async def filtered():
        page = await amo.leads.get_page(filter={"statuses": [{"pipeline_id": pid, "status_id": second}]})
        assert [l.id for l in page.items] == [boris], page
        page = await amo.leads.get_page(filter={"id": [anna, boris]}, order={"id": "asc"})
        assert [l.id for l in page.items] == sorted([anna, boris]), page
        empty = await amo.leads.get_page(filter={"created_at": {"from": 4102444800}})
        assert len(empty) == 0 and not empty.has_next, "an empty list is a 204"

    await filtered()

    @step("leads.iterate pages through every lead by the absolute _links (limit 1)")
    async def paging():
        seen = [l.id async for l in amo.leads.iterate(limit=1)]
        assert len(seen) == 3 and len(set(seen)) == 3, seen
        page = await amo.leads.get_page(limit=1)
        assert page.next_url and amo.owns_url(page.next_url), page.next_url

    await paging()

    @step("leads.notes.create: a common note and a service message; notes listed by lead and type")
    async def notes():
        refs = await amo.leads.notes.create([
            Note.common(anna, "Called back"),
            Note(entity_id=anna, note_type="service_message", params={"text": "SMS sent", "service": "Notify"}),
        ])
        assert len(refs) == 2 and all(r.id for r in refs), refs
        page = await amo.leads.notes.get_page(filter={"entity_id": [anna]})
        assert sorted(n.note_type for n in page.items) == ["common", "service_message"], page
        own = await amo.leads.notes.get_page(entity_id=anna, filter={"note_type": ["common"]})
        assert [n.text for n in own.items] == ["Called back"], own

    await notes()

    @step("POST leads/unsorted/forms with the browser's visitor_uid: its page views join the lead")
    async def by_api():
        answer = await amo.request("POST", "leads/unsorted/forms", json=[{
            "source_uid": "backend", "source_name": "Shop backend", "pipeline_id": pid,
            "metadata": {"form_id": "signup", "form_name": "Sign-up", "form_page": "https://shop.example/signup",
                         "ip": "203.0.113.9", "referer": "", "visitor_uid": visitor_uid},
            "_embedded": {"leads": [{"name": "Sign-up: Gleb"}],
                          "contacts": [{"name": "Gleb", "custom_fields_values": [
                              {"field_code": "EMAIL", "values": [{"value": "gleb@example.com"}]}]}]},
        }])
        lead = answer["_embedded"]["unsorted"][0]["_embedded"]["leads"][0]["id"]
        timeline = raw(base, "GET", f"/api/v4/leads/{lead}/timeline")
        pages = [i["url"] for i in timeline["_embedded"]["timeline"] if i["type"] == "page_view"]
        assert pages == ["https://shop.example/pricing"], timeline
        return lead

    lead = await by_api()

    @step("POST leads/{id}/visitors: another browser linked to the lead with its history")
    async def link_browser():
        other = raw(base, "POST", "/v1/collect", {"site": site["key"], "vid": None, "url": "https://shop.example/blog",
                                                  "referrer": "", "title": "Blog"}, content_type="text/plain;charset=UTF-8")
        answer = await amo.request("POST", f"leads/{lead}/visitors", json=[{"visitor_uid": other["vid"]}])
        assert len(answer["_embedded"]["visitors"]) == 2, answer

    await link_browser()

    @step("contacts.get_page with=leads; contacts.get")
    async def contacts():
        page = await amo.contacts.get_page(with_=["leads"], query="anna")
        assert len(page.items) == 1 and page.items[0].name == "Anna", page
        contact = await amo.contacts.get(page.items[0].id)
        assert contact.name == "Anna", contact

    await contacts()

    @step("GET events: the account's event log, filtered by type and entity")
    async def event_log():
        log = await amo.request("GET", "events", params={
            "filter": {"type": ["lead_status_changed"], "entity": ["lead"], "entity_id": [boris]}})
        changes = log["_embedded"]["events"]
        assert changes and all(e["type"] == "lead_status_changed" and e["entity_id"] == boris for e in changes), log
        assert changes[0]["value_after"][0]["lead_status"]["id"] == second, changes[0]

    await event_log()

    @step("a refused request reaches the library as a ValidationError from validation-errors")
    async def refused():
        try:
            await amo.leads.update([Lead(id=999999, name="Ghost")])
        except ValidationError as e:
            assert e.errors and e.errors[0].path == "id" and e.errors[0].request_id == "0", e.errors
        else:
            raise AssertionError("an unknown lead was accepted")
        try:
            await amo.request("POST", "leads/unsorted/forms", json=[{
                "source_uid": "x", "source_name": "x", "pipeline_id": pid,
                "metadata": {"form_id": "f", "form_name": "F", "visitor_uid": visitor_uid + "x"}}])
        except ValidationError as e:
            assert [i.path for i in e.errors] == ["metadata.visitor_uid"], e.errors
        else:
            raise AssertionError("a forged visitor_uid was accepted")
        # The caller's own request_id names its item, as the library documents.
        try:
            await amo.request("POST", "leads", json=[
                {"name": "Fine", "request_id": "site-1"},
                {"name": "Bad stage", "status_id": 4242, "request_id": "site-2"}])
        except ValidationError as e:
            assert [(i.request_id, i.path) for i in e.errors] == [("site-2", "status_id")], e.errors
        else:
            raise AssertionError("a lead in an unknown stage was accepted")

    await refused()

    @step("leads.create: a lead with a new contact and the browser's visitor_uid (POST /leads)")
    async def create_lead():
        browser = raw(base, "POST", "/v1/collect", {"site": site["key"], "vid": None, "url": "https://shop.example/cart",
                                                    "referrer": "", "title": "Cart"}, content_type="text/plain;charset=UTF-8")
        contact = Contact(first_name="Dina", last_name="Orlova", custom_fields_values=[
            CustomFieldValues(field_code="PHONE", values=[CustomFieldValue(value="+7 900 111-22-33", enum_code="WORK")]),
            CustomFieldValues(field_code="EMAIL", values=[CustomFieldValue(value="dina@example.com", enum_code="WORK")])])
        refs = await amo.leads.create([Lead(name="Order #77", price=990, pipeline_id=pid, status_id=first,
                                            visitor_uid=browser["vid"], embedded=Embedded(contacts=[contact]))])
        assert len(refs) == 1 and refs[0].id, refs
        lead = await amo.leads.get(refs[0].id, with_=["contacts"])
        assert lead.name == "Order #77" and lead.status_id == first, lead
        card = raw(base, "GET", f"/api/v4/leads/{refs[0].id}")
        assert card["_embedded"]["contacts"][0]["email"] == "dina@example.com", card
        assert len(card["_embedded"]["visitors"]) == 1, card
        timeline = raw(base, "GET", f"/api/v4/leads/{refs[0].id}/timeline")
        pages = [i["url"] for i in timeline["_embedded"]["timeline"] if i["type"] == "page_view"]
        assert pages == ["https://shop.example/cart"], timeline
        return refs[0].id, card["_embedded"]["contacts"][0]["id"]

    api_lead, dina = await create_lead()

    @step("leads.create_complex: a lead with a new contact in one call (POST /leads/complex)")
    async def complex_lead():
        contact = Contact(name="Egor", custom_fields_values=[
            CustomFieldValues(field_code="EMAIL", values=[CustomFieldValue(value="egor@example.com")])])
        [result] = await amo.leads.create_complex([Lead(name="Call Egor", embedded=Embedded(contacts=[contact]))])
        assert result.id and result.contact_id and result.merged is False, result
        found = await amo.contacts.get(result.contact_id)
        assert found.name == "Egor", found

    await complex_lead()

    @step("contacts.create and contacts.update: the change reaches the contact's lead")
    async def contact_writes():
        [ref] = await amo.contacts.create([Contact(name="Zoya")])
        assert (await amo.contacts.get(ref.id)).name == "Zoya"
        await amo.contacts.update([Contact(id=dina, name="Dina O.", custom_fields_values=[
            CustomFieldValues(field_code="EMAIL", values=[CustomFieldValue(value="dina.o@example.com")])])])
        card = raw(base, "GET", f"/api/v4/leads/{api_lead}")
        assert card["_embedded"]["contacts"][0]["name"] == "Dina O.", card
        assert card["_embedded"]["contacts"][0]["email"] == "dina.o@example.com", card

    await contact_writes()

    @step("POST webhooks (request(): the library has no webhooks resource): a status change arrives, "
          "signed, and parse_webhook reads it")
    async def account_webhook():
        received = queue.Queue()

        class Subscriber(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put(({k.lower(): v for k, v in self.headers.items()}, body.decode()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Subscriber)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            destination = f"http://127.0.0.1:{server.server_port}/amo"
            hook = await amo.request("POST", "webhooks", json={
                "destination": destination, "settings": ["status_lead"], "sort": 10})
            assert hook["destination"] == destination and hook["secret"].startswith("whsec_"), hook
            listed = await amo.request("GET", "webhooks", params={"filter": {"destination": destination}})
            assert listed["_embedded"]["webhooks"][0]["settings"] == ["status_lead"], listed
            await amo.leads.update([Lead(id=api_lead, status_id=second, pipeline_id=pid)])
            headers, body = await asyncio.to_thread(received.get, True, 10)
            assert headers["content-type"] == "application/x-www-form-urlencoded", headers
            SignedWebhook(hook["secret"]).verify(body, headers, json_parse=False)
            webhook = parse_webhook(body)
            [event] = webhook.events
            assert (event.entity, event.action, event.id) == ("leads", "status", api_lead), event
            assert event.payload["old_status_id"] == str(first), event.payload
            assert event.payload["status_id"] == str(second), event.payload
            assert webhook.account["subdomain"] == "clienttest", webhook.account
            await amo.request("DELETE", "webhooks", json={"destination": destination})
        finally:
            server.shutdown()

    await account_webhook()


if __name__ == "__main__":
    main()
