"""Rate buckets are UNLOGGED: a take then commits without waiting for a WAL flush where
``synchronous_commit`` is on (a server's default, with ``DATABASE_URL``; ~0.2 ms a chat request
on this disk). After a PostgreSQL crash the table comes back empty, i.e. every bucket full again,
which only forgets how much of each limit was used in the last window; buckets are not
replicated to standbys, which read nothing from them."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("access", "0002_rate_buckets"),
    ]

    operations = [
        migrations.RunSQL("ALTER TABLE rate_buckets SET UNLOGGED", reverse_sql="ALTER TABLE rate_buckets SET LOGGED"),
    ]
