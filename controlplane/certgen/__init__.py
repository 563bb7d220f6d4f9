"""`controlplane certgen`: the certificates that let Envoys and controllers speak xDS over mTLS.

xDS carries every tenant's private keys (SDS), so when Envoys and controllers run in different
pods the connection between them is mutual TLS: the controller proves it is the controller, and
only Envoys holding a certificate of the same CA get anything. As Contour's `certgen` does, one
run makes a throw-away CA and two leaves signed by it:

- ``ca.crt``: the CA bundle both sides trust. The CA's private key is never written anywhere:
  nobody can issue another certificate from it later.
- ``controlplane/tls.crt|tls.key``: the server certificate, ``serverAuth``, with the names a
  client may dial: ``controlplane``, ``controlplane.NS``, ``controlplane.NS.svc``,
  ``controlplane.NS.svc.cluster.local``, ``localhost`` and ``127.0.0.1``. Envoys and
  ``controlplane xds`` check the name ``controlplane`` whatever address they dial
  (`controlplane.envoy.bootstrap`), so replicas behind any Service or IP are the same server.
- ``envoy/tls.crt|tls.key``: the client certificate, ``clientAuth``, named ``envoy``.

Keys are ECDSA P-256 (``--rsa``: RSA-2048), certificates SHA-256 signed, valid from an hour
before now (clock skew) for ``--lifetime`` days.

Two destinations, one rule: what is there and still valid (parses, the key matches, each leaf
is signed by a CA of its bundle, both bundles are the same, not expired) is kept unless
``--overwrite``; anything else is replaced as a whole (the CA key is gone, so a missing leaf
can only come with a new CA), by a new CA alone.

- ``certgen DIR`` writes files, keys with mode 0600, each file replaced atomically.
- ``certgen --kubernetes --namespace NS`` writes two ``kubernetes.io/tls`` Secrets with a
  ``ca.crt`` key, ``controlplanecert`` and ``envoycert``, through kubernetes-asyncio (the
  certgen Job in ``manifests/``); a Secret replaced meanwhile by another writer fails the
  replace (resourceVersion) rather than being clobbered.

Rotation (``--rotate``) without a failed handshake
--------------------------------------------------
The two sides never change at the same moment: the kubelet updates each pod's Secret volume on
its own schedule (up to a minute or two apart), and a handshake needs each side's leaf to be
signed by a CA the *other* side trusts. Replacing CA and leaves at once (``--overwrite``)
therefore fails new connections while the pods catch up: a controller presenting a leaf of
the new CA to an Envoy that trusts only the old one, and the other way round. Open streams
never notice (certificates are only looked at during a handshake), but an Envoy that
reconnects then, or a new one, gets nothing until its volume is updated.

``--rotate`` makes a new CA and new leaves, and writes them in two steps, holding the new CA's
key in memory only in between:

1. **trust**: ``ca.crt`` becomes the new CA followed by the previous CAs that still matter
   (`trust_bundle`), while the leaves stay as they are. Every combination of old and new
   volumes still verifies: nothing but trust was added.
2. after ``--rotate-wait`` seconds (every pod has seen step 1), **leaves**: new leaves signed by
   the new CA, with the same ``ca.crt``. A peer already on the new leaf is trusted by one
   still on the old leaf (step 1 gave it the new CA) and the other way round (the old CA is
   still in the bundle).

`trust_bundle` keeps a previous CA only if it is still valid *and* signed one of the leaves
being replaced: those are the leaves pods may still present or verify during the swap. CAs
that expired are dropped, and so is a CA left over from an earlier rotation (its leaves were
replaced a rotation ago) or from a rotation interrupted between its steps (no leaf of it was
ever written), so the bundle stays at two CAs. When no previous CA is kept (the certificates
had expired: nothing works that could be broken) step 1 and the wait are skipped. A rotation
interrupted in the wait leaves a working state that the next run rotates again.

Generation and checks are pure functions of their inputs (``now`` is injectable); the writes
are the explicit I/O steps, and the wait is an injectable ``sleep``. One module per job:
`certificates` (generation, checks, the rotation's plan: pure), `files` (a directory) and
`kube_secrets` (the two Secrets); this package names what callers use.
"""

from controlplane.certgen.certificates import (
    CERT_MODE,
    CLIENT_NAME,
    CONTROLPLANE_SECRET,
    DEFAULT_LIFETIME_DAYS,
    DEFAULT_NAMESPACE,
    DEFAULT_ROTATE_WAIT_S,
    ENVOY_SECRET,
    KEY_MODE,
    SERVER_NAME,
    Bundle,
    KeyType,
    Leaf,
    Outcome,
    Progress,
    Rotation,
    build_certificate,
    check_bundle,
    check_lifetime,
    controlplane_names,
    generate,
    key_pem,
    new_key,
    plan_rotation,
    trust_bundle,
)
from controlplane.certgen.files import read_directory, rotate_directory, write_directory
from controlplane.certgen.kube_secrets import rotate_secrets, secret_manifests, write_secrets

__all__ = [
    "CERT_MODE",
    "CLIENT_NAME",
    "CONTROLPLANE_SECRET",
    "DEFAULT_LIFETIME_DAYS",
    "DEFAULT_NAMESPACE",
    "DEFAULT_ROTATE_WAIT_S",
    "ENVOY_SECRET",
    "KEY_MODE",
    "SERVER_NAME",
    "Bundle",
    "KeyType",
    "Leaf",
    "Outcome",
    "Progress",
    "Rotation",
    "build_certificate",
    "check_bundle",
    "check_lifetime",
    "controlplane_names",
    "generate",
    "key_pem",
    "new_key",
    "plan_rotation",
    "read_directory",
    "rotate_directory",
    "rotate_secrets",
    "secret_manifests",
    "trust_bundle",
    "write_directory",
    "write_secrets",
]
