"""The approval queue's worker side: holds nobody decided on within their policy's `approval_expires`
become `expired` (and are reported). People's decisions are recorded by `wiring.handover`."""

from __future__ import annotations

from dataclasses import dataclass

from workers.core.lifecycle import State
from workers.flow.origin import Notifier
from workers.store import Store
from workers.wiring.rulesdir import RulesDir


@dataclass(frozen=True)
class Approvals:
    """Expiry of holds nobody decided on (decisions are recorded by `wiring.handover`)."""

    store: Store
    rules: RulesDir
    notifier: Notifier

    def expire(self, now: float) -> list[str]:
        """Holds older than their policy's approval_expires become `expired` and can no longer be approved."""
        config = self.rules.current()
        expired = []
        for msg in self.store.messages.held(limit=5000):
            policy = config.policy(msg.policy)
            if now - (msg.updated_at or now) < policy.approval_expires:
                continue
            moved, _ = self.store.messages.transition(msg.id, State.EXPIRED, now,
                                           f"no decision within approval_expires ({policy.approval_expires:.0f}s)",
                                           expect={State.HELD})
            if moved:
                expired.append(msg.id)
                self.notifier.notify([msg.but(state=State.EXPIRED)], State.EXPIRED, now)
        return expired
