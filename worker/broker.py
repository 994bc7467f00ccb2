"""The workers' Redis transport: kombu's, made to survive Celery 5.7 closing a lost connection.

On a lost broker connection Celery 5.7.0 first `collect()`s the connection, which drops the
transport's reference to it, and then closes it. Closing the channel restores its unacknowledged
messages, which needs the connection parameters, read from that dropped reference: an
AttributeError that Celery does not expect, so a Redis restart stopped the whole worker
("Unrecoverable error"). This channel remembers the parameters it connected with and uses them
when the reference is gone, so the restore, and acks of jobs that were running, reach Redis again.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis

TRANSPORT = f"{__name__}:Transport"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        saved = self.__dict__.setdefault("_saved_connparams", {})
        if getattr(self.connection, "client", None) is None and asynchronous in saved:
            return dict(saved[asynchronous])
        params = super()._connparams(asynchronous=asynchronous)
        saved[asynchronous] = dict(params)
        return params


class Transport(kombu_redis.Transport):
    Channel = Channel
