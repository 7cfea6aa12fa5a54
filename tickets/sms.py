"""Sending text messages through a pluggable backend.

``settings.SMS_BACKEND`` names a class with one method::

    class MyGatewayBackend:
        def send(self, to: str, text: str) -> str:
            '''Send ``text`` to ``to`` (an E.164 number such as +8613800138000).

            Return the gateway's message id (or "" if it has none). Raise any
            exception when the gateway refuses or cannot be reached: the
            notification is then marked failed and retried with back-off.
            '''

The default, ``LoggingSmsBackend``, writes each message to the log, which is
what a development machine wants. ``LocmemSmsBackend`` keeps messages in
``tickets.sms.outbox`` for tests. A real gateway (Aliyun SMS, Tencent Cloud
SMS, Twilio…) is a class like the above in its own module; point
SMS_BACKEND at it and put its credentials in environment variables.
"""

import logging
import uuid

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger("tickets.sms")

outbox = []


class LoggingSmsBackend:
    def send(self, to, text):
        message_id = uuid.uuid4().hex
        logger.info("SMS to %s (%s): %s", to, message_id, text)
        return message_id


class LocmemSmsBackend:
    def send(self, to, text):
        message_id = uuid.uuid4().hex
        outbox.append({"to": to, "text": text, "id": message_id})
        return message_id


def get_backend():
    return import_string(getattr(settings, "SMS_BACKEND", "tickets.sms.LoggingSmsBackend"))()


def send(to, text):
    return get_backend().send(to, text)
