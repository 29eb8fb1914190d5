"""Only people whose join token carries an e-mail at an allowed domain get in."""

import os

from parley.policy import allow, deny

#: Comma-separated, e.g. ALLOWED_DOMAINS="example.org,example.com".
DOMAINS = {d.strip().lower() for d in os.environ.get("ALLOWED_DOMAINS", "example.org").split(",")}


def on_join(join):
    email = join.claims.get("email")
    domain = email.rpartition("@")[2].lower() if isinstance(email, str) else ""
    return allow() if domain in DOMAINS else deny("sign in with your organisation's account")
