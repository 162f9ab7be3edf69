"""Outbound network connections: sessions that resolve, check and connect in one step (callbacks)."""
