"""A webhook receiver: checks each event's signature, skips repeats, prints the rest.

WEBHOOK_SECRET=s python examples/webhook_receiver.py 9000
PARLEY_WEBHOOK_SECRET=s parley serve --webhook-url http://127.0.0.1:9000/parley
"""

import hashlib
import hmac
import json
import os
import sys

from aiohttp import web

SECRET = os.environ["WEBHOOK_SECRET"].encode()
seen: set[int] = set()  # delivery is at least once: an event may come twice


async def parley(request: web.Request) -> web.Response:
    body = await request.read()  # the raw bytes: the signature covers exactly these
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Parley-Signature", "")):
        return web.Response(status=401)
    event = json.loads(body)
    if event["id"] not in seen:
        seen.add(event["id"])
        print(event["id"], event["type"], event["room"], json.dumps(event["data"]), flush=True)
    return web.Response(status=204)  # any 2xx: Parley moves on to the next event


app = web.Application()
app.router.add_post("/parley", parley)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
