"""An SMS backend for process-level tests: appends each message to a file.

SMS_FILE names the file; SMS_DELAY (seconds) makes the "gateway" slow, so a
test can kill the worker in the middle of a send.
"""

import json
import os
import time
import uuid


class FileSmsBackend:
    def send(self, to, text):
        time.sleep(float(os.environ.get("SMS_DELAY", "0")))
        message_id = uuid.uuid4().hex
        with open(os.environ["SMS_FILE"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"to": to, "text": text, "id": message_id}) + "\n")
        return message_id
