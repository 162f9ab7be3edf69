"""ClickSend v3: the thin HTTP client and, beside it, a local simulator that speaks the same API."""
