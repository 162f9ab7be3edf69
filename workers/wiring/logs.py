"""Logging set-up shared by every process kind (web, workers, cron, CLI)."""

from __future__ import annotations

import logging

from workers.wiring.settings import Settings


def configure(settings: Settings) -> None:
    """A plain line format when nothing else configured logging, and Hookline's level from the settings."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("hookline").setLevel(settings.log_level)
