"""Django database backend: PostgreSQL, started on first connection when embedded.

It is Django's own PostgreSQL backend; the only addition is that the connection
parameters come from the embedded server, which is started (or attached to) the
first time this process needs a connection, not at import time.
"""

from pathlib import Path

from django.db.backends.postgresql import base

from platform_site import embedded_db


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        embedded = self.settings_dict["OPTIONS_EMBEDDED"]
        server = embedded_db.ensure_running(Path(embedded["pgdata"]), embedded["dbname"])
        self.settings_dict.update(server)
        return super().get_connection_params()
