"""Approve-by-policy: the decision for one planned message, with every reason behind it.

Pure. Until policies.yaml lands (issue 5) every message is approved automatically, and that is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Decision:
    """`send` (approved), `hold` (needs a person), `defer` (later, to `until`) or `suppress`."""

    action: str
    reasons: tuple[str, ...] = field(default_factory=tuple)
    until: float | None = None


def decide(policy_name: str, now: float) -> Decision:
    """The decision for a message under `policy_name` at `now`."""
    return Decision("send", (f"policy {policy_name}: approved automatically (no policy checks configured)",))
