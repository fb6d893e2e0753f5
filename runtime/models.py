"""The runtime owns no tables: its state lives in sessions_app (sessions, instances)."""
