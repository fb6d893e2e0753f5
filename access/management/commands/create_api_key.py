from django.core.management.base import BaseCommand

from access.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key. The key is printed once, as the last line of the output."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin", action="store_true", help="Also allow the /admin API routes.")

    def handle(self, *args, name: str, admin: bool, **options):
        issued = api_key_create(name=name, admin=admin)
        scopes = ", ".join(issued.key.scopes)
        self.stderr.write(f"Created API key {issued.key.name!r} (id {issued.key.pk}, scopes: {scopes}).")
        self.stderr.write("Store it now: it is kept only as a hash and cannot be shown again.")
        self.stdout.write(issued.raw)
