"""manage.py export_release --project X --release v1 OUT [--format parquet|save_to_disk]

Writes the release as a Hugging Face datasets folder (``releases.export``): ``load_dataset(OUT, "pairs")`` and
``load_dataset(OUT, "rankings")`` read it. ``--format save_to_disk`` writes ``DatasetDict.save_to_disk`` output
instead (``OUT/pairs``, ``OUT/rankings`` for ``load_from_disk``) and needs the ``datasets`` library.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from releases.export import FORMATS, ExportError, save_to_disk, write_folder
from releases.lookup import UnknownRelease, find_release


class Command(BaseCommand):
    requires_system_checks = []
    help = "Export a dataset release as a Hugging Face datasets folder (Parquet shards and a dataset card)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("output", help="the folder to write (absent or empty)")
        parser.add_argument("--project", required=True, help="project id or exact name")
        parser.add_argument("--release", required=True, help="the release's name (or id)")
        parser.add_argument("--format", choices=FORMATS, default="parquet",
                            help="parquet (load_dataset; only pyarrow needed) or save_to_disk (load_from_disk)")

    def handle(self, *args, output: str, project: str, release: str, format: str, **options) -> None:
        try:
            found = find_release(project, release)
            written = (write_folder if format == "parquet" else save_to_disk)(found, Path(output))
        except (UnknownRelease, ExportError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Wrote release {found.name!r} ({found.n_rankings:,} rankings, {found.n_pairs:,} pairs, "
                          f"sha256 {found.sha256}) to {written['path']}")
