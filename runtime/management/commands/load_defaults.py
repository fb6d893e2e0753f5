from django.core.management.base import BaseCommand

from runtime.defaults import load_defaults


class Command(BaseCommand):
    help = "Create or refresh the system and standard tools and the default agent templates."

    def handle(self, *args, **options):
        counts = load_defaults()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in counts.items()))
