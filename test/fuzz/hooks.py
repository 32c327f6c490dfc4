"""schemathesis hooks of stevedore's fuzz runs, loaded by test/fuzz/schemathesis.toml
(`hooks`, from STEVEDORE_FUZZ_HOOKS). Only what keeps the server's own traffic on hosts
the runner chose; nothing here changes what is checked."""

import os

import schemathesis

# Where the server may deliver webhooks: the runner's own receiver.
CALLBACK_URL = os.environ.get("STEVEDORE_FUZZ_CALLBACK_URL", "")
if not CALLBACK_URL:
    raise RuntimeError("set STEVEDORE_FUZZ_CALLBACK_URL: the URL that replaces every generated callback_url")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """A job's callback_url gets a signed webhook when the job ends, and a fuzzer's
    cancel ends a job: every string the generator put there, in any phase, becomes the
    runner's receiver, so the server never calls a host the generator made up.
    Non-string values are left as generated (the server refuses them)."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("callback_url"), str):
        body["callback_url"] = CALLBACK_URL
