"""Wiring: settings from the environment, the rules directory, the job enqueuer and the composition root
that builds one set of collaborators per process."""
