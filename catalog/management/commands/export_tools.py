import json
import sys

from django.core.management.base import BaseCommand

from catalog.bulk import tools_export


class Command(BaseCommand):
    help = "Export tools as JSON Lines (one tool per line), the format import_tools reads."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument("--active-only", action="store_true")

    def handle(self, *args, output: str | None, active_only: bool, **options):
        out = open(output, "w", encoding="utf-8") if output else sys.stdout
        count = 0
        try:
            for row in tools_export(active_only=active_only):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        finally:
            if output:
                out.close()
        self.stderr.write(f"exported {count} tool(s)")
