"""Local tooling: `hookline up`'s supervisor and private Redis, the dry run and the trace printer."""
