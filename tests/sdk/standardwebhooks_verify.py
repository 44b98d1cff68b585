"""Verifies creditd's outbound deliveries with the official Standard Webhooks library.

Reads a JSON list of {secret, id, timestamp, signature, body, valid} on stdin and checks that
the library accepts exactly the cases marked valid. Used by tests/api/outbound/verifier.rs.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

cases = json.load(sys.stdin)
for number, case in enumerate(cases):
    headers = {
        "webhook-id": case["id"],
        "webhook-timestamp": case["timestamp"],
        "webhook-signature": case["signature"],
    }
    try:
        payload = Webhook(case["secret"]).verify(case["body"], headers)
        verified = True
        assert payload["id"] == case["id"], "the body's id is the webhook-id"
    except Exception as error:  # the library raises WebhookVerificationError
        verified = False
        reason = repr(error)
    if verified != case["valid"]:
        sys.exit(f"case {number}: verified={verified}, expected {case['valid']}: "
                 f"{'' if verified else reason}")
print(f"{len(cases)} cases as expected")
