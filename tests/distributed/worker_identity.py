"""The ``[core] hostname_callable`` of the test's Celery workers: each reports its own name.

Both workers run on this machine, so the default (the machine's FQDN) would record the same
``hostname`` on every task instance. Each worker is started with ``RETRAINING_TEST_WORKER`` set
to its name and ``AIRFLOW__CORE__HOSTNAME_CALLABLE`` pointing here, so the task instances say
which worker ran them (read back through the REST API).
"""

from __future__ import annotations

import os
import socket

WORKER_ENV_VAR = "RETRAINING_TEST_WORKER"


def hostname() -> str:
    """``<worker name>.<machine>``; the machine's name alone outside a test worker."""
    machine = socket.getfqdn()
    name = os.environ.get(WORKER_ENV_VAR)
    return f"{name}.{machine}" if name else machine
