"""gunicorn's configuration, the same wherever the app is served.

`resorption serve`, the test server (tests/fix_server.py), the image (Dockerfile) and the
bench (bench/servers.py) all pass `--config config/gunicorn.conf.py`; each keeps its own
bind, workers and timeout on its command line. The limits come from the environment
(resorption.settings.Limits, README « Sécurité »).
"""

import os

from resorption.serving import (
    bounded_malloc,
    forget_worker_metrics,
    french_refusals,
    limits_or_exit,
    prepare_metrics_dir,
)

_limits = limits_or_exit()

# Request bodies given back to the system once freed (a worker's memory stays bounded).
bounded_malloc()

# The web map sends its filters as CQL2 text in GET requests: gunicorn's default line
# (4,094 bytes) is raised to its maximum, 8,190 bytes.
limit_request_line = _limits.request_line
limit_request_fields = _limits.request_headers
limit_request_field_size = _limits.header_bytes

# One request at a time in each worker, served by one of its threads; a response that streams
# (/events over SSE for up to RESORPTION_SSE_MAX_SECONDS, at most RESORPTION_SSE_MAX_STREAMS of
# them per worker; exports) leaves the turn to another thread (resorption.serving_worker).
# Each thread draws its own pooled connection (RESORPTION_POOL_MAX, 8 by default), and may hold
# a body of up to RESORPTION_MAX_BODY_BYTES (32 MiB): a worker's memory grows by threads × that
# at worst (tests/test_hostile_input.py). More requests at once: more workers (--workers).
worker_class = "resorption.serving_worker.Worker"
threads = int(os.environ.get("RESORPTION_THREADS", "4"))

# Requests refused by gunicorn itself (line, headers, malformed HTTP) answer in French.
post_worker_init = french_refusals

# No runtime control socket (`gunicornc`): nothing uses it, and every gunicorn of a machine
# would otherwise share its default path ($HOME/.gunicorn/gunicorn.ctl).
control_socket_disable = True

# Metrics (/metrics): each worker writes its values in this folder, emptied at start.
prepare_metrics_dir()
child_exit = forget_worker_metrics

# A stop (SIGTERM: systemd, docker stop, a deployment) lets the requests under way finish:
# the workers stop accepting, answer what they hold, then exit; after this many seconds
# they are killed. Above the slowest request's read timeout (settings.Timeouts, read: 30 s).
graceful_timeout = int(os.environ.get("RESORPTION_GRACEFUL_TIMEOUT_S", "40"))
