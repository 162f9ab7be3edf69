"""Signature schemes: each one a single registry entry with its verifier, config checks and id/type defaults.

`registry` lists the entries; `base` defines what an entry is; `hmac`, `standard` and `tokens` hold the
verifier families; `common` the pieces they share. Pure, like the rest of `workers.core`: verifiers take the
raw body, a case-insensitive header mapping and `now`; nothing here touches a request, Redis or the clock.
"""

from workers.core.schemes.base import ConfigCheck, Defaults, Scheme, Verifier, Verify, Where
from workers.core.schemes.registry import REGISTRY, get, names

__all__ = ["REGISTRY", "ConfigCheck", "Defaults", "Scheme", "Verifier", "Verify", "Where", "get", "names"]
