"""moto's server (`python -m moto.server`, same arguments), handling one request at a time.

DynamoDB applies each write, its condition included, atomically. moto's threaded server
does not: it checks a condition and writes the item without a lock, so two conditional
updates of one item sent at once can both succeed (seen as two telemetry pushes in one
interval under load). Handling one request at a time gives moto DynamoDB's atomicity;
connections stay concurrent and kept alive, and moto answers a request in about a
millisecond, so clients hardly wait.

The server also ends when the process that started it is gone: `wsgw local` or xtask
killed outright (SIGKILL) cannot stop it, and an orphaned server would hold its port.
"""

import os
import sys
import threading
import time

import moto.server

_serve = moto.server.run_simple


def _one_request_at_a_time(host, port, app, **options):
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            answer = app(environ, start_response)
            try:
                return list(answer)
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()

    _serve(host, port, serialised, **options)


def _end_with_parent(parent):
    """Exits once `parent` is no longer this process's parent (it died: the process was
    re-parented). Checked every 0.2 s, so an orphan is gone within a moment."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


threading.Thread(target=_end_with_parent, args=(os.getppid(),), daemon=True).start()
moto.server.run_simple = _one_request_at_a_time
moto.server.main(sys.argv[1:])
