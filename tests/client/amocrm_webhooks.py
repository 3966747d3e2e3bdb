"""Decodes account-webhook deliveries as an amoCRM integration's PHP backend would.

Reads JSON on stdin: {"secret": "whsec_…", "deliveries": [{"headers": {…}, "body": "…"}]}.
Each body is verified with the `standardwebhooks` package (Standard Webhooks signature
over the form body as sent) and decoded with `querystring-parser`, a PHP-style bracket
parser from PyPI (`leads[status][0][id]=7` → {"leads": {"status": {"0": {"id": "7"}}}}).
Prints the decoded bodies as a JSON array; exits non-zero when a signature does not
verify or the content type is not a form's.
"""

import json
import sys

from querystring_parser import parser
from standardwebhooks.webhooks import Webhook


def main() -> int:
    request = json.load(sys.stdin)
    hook = Webhook(request["secret"])
    decoded = []
    for d in request["deliveries"]:
        headers = d["headers"]
        content_type = headers.get("content-type", "")
        if content_type != "application/x-www-form-urlencoded":
            print(f"not a form: {content_type!r}", file=sys.stderr)
            return 2
        hook.verify(d["body"], headers, json_parse=False)
        decoded.append(parser.parse(d["body"], normalized=True))
    json.dump(decoded, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
