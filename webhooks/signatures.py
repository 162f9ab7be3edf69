"""Verification of incoming webhook signatures: look the source's scheme up in the registry and run it.

The schemes themselves (verifier, config checks, id/type defaults) live in `workers.core.schemes`; this module
only settles the replay window. Pure: takes the raw body, the headers and `now`; never touches the request,
Redis or the clock. Every failure raises SignatureInvalid with a log-only detail.
"""

from __future__ import annotations

from collections.abc import Mapping

from workers.core import schemes
from workers.core.sources import Verify
from workers.errors import SignatureInvalid
from workers.wiring.settings import DEFAULT_SIGNATURE_TOLERANCE


def verify(spec: Verify, body: bytes, headers: Mapping[str, str], now: float,
           tolerance: float = DEFAULT_SIGNATURE_TOLERANCE) -> None:
    """Raise SignatureInvalid unless `body` and `headers` carry a valid signature for `spec`.

    `headers` must be case-insensitive (werkzeug's Headers is). A per-source tolerance wins over `tolerance`.
    """
    window = spec.tolerance if spec.tolerance is not None else tolerance
    scheme = schemes.get(spec.scheme)
    if scheme is None:  # only a Verify built by hand can get here; refuse rather than fail open or crash
        raise SignatureInvalid(f"no scheme named {spec.scheme!r}")
    scheme.verifier(spec, body, headers, now, window)
