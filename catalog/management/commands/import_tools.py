import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.bulk import ImportReport, tool_import_one


class Command(BaseCommand):
    help = (
        "Import tools from a JSON Lines file (one tool per line: name, description, parameters, and "
        "optionally kind, entrypoint, endpoint, target_template, risk, tags, is_active). Idempotent by name: "
        "existing tools are updated only when their definition differs. A tool with no implementation is "
        "stored as a declared tool."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file: str, no_progress: bool, **options):
        try:
            with open(file, encoding="utf-8") as fh:
                lines = [line for line in fh if line.strip()]
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        report = ImportReport()
        for number, line in enumerate(tqdm(lines, unit="tool", disable=no_progress, file=self.stderr), 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                report.errors.append(f"line {number}: invalid JSON ({exc.msg})")
                continue
            tool_import_one(row, report)
        for error in report.errors[:50]:
            self.stderr.write(f"  {error}")
        self.stdout.write(
            f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
            f"errors {len(report.errors)}"
        )
        if report.errors:
            raise CommandError(f"{len(report.errors)} line(s) were not imported")
