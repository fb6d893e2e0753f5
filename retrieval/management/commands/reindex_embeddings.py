from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from retrieval.embedders import EMBEDDERS, EmbedderUnavailable
from retrieval.services import tool_embeddings_refresh


class Command(BaseCommand):
    help = (
        "Refresh the tool search index: keyword docs, then embeddings of the tools whose embedding is "
        "missing, was computed by another model, from an older text or by an older recipe (how a vector is "
        "made from a tool's texts). Resumable: every batch commits, "
        "so an interrupted run continues where it stopped and a second run embeds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", help=f"embedding model (default: EMBEDDING_MODEL); one of {sorted(EMBEDDERS)}")
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--all", action="store_true", help="recompute every embedding")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, model: str | None, batch_size: int, all: bool, no_progress: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        bar = tqdm(unit="tool", disable=no_progress, file=self.stderr, desc="embedding")
        try:
            report = tool_embeddings_refresh(
                model=model,
                batch_size=batch_size,
                force=all,
                on_start=lambda total: bar.reset(total=total),
                on_progress=bar.update,
            )
        except (ValueError, EmbedderUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        self.stdout.write(
            f"scanned {report.scanned}, keyword docs refreshed {report.docs_refreshed}, embedded {report.embedded}"
        )
