"""The app factory: the web edge verifies, stores and hands over, so it loads no outbound HTTP client."""

from __future__ import annotations

import json
import subprocess
import sys

from workers.wiring.settings import Settings

_PROBE = """
import json, sys
from webhooks import create_app
app = create_app()
print(json.dumps({"loaded": sorted(m for m in ("requests", "urllib3", "httpx") if m in sys.modules),
                  "flow": sorted(m for m in sys.modules if m.startswith(("workers.flow", "workers.clicksend",
                                                                         "workers.entry")))}))
"""


def test_the_web_app_imports_no_outbound_http_client_and_no_flow_step(settings: Settings) -> None:
    env = {"REDIS_URL": settings.redis_url, "HOOKLINE_RULES_DIR": settings.rules_dir, "PATH": "/usr/bin:/bin",
           "SHOP_WEBHOOK_SECRET": "s", "ALERTMANAGER_TOKEN": "t", "STRIPE_WEBHOOK_SECRET": "s",
           "GRAFANA_WEBHOOK_TOKEN": "t", "CALCOM_WEBHOOK_SECRET": "s", "CALENDLY_SIGNING_KEY": "s",
           "CALENDAR_WEBHOOK_SECRET": "whsec_Y2FsZW5kYXItdGVzdC1zZWNyZXQtMDEyMw=="}
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"loaded": [], "flow": []}
