"""manage.py serve_rewards [--max-items N] [--max-wait-ms M] — a reward server (serving.server) until stopped."""

from __future__ import annotations

import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Answer scoring requests from the web processes in batches, holding the reward models in memory "
            "(CPU or GPU). Run one per scoring machine; SIGTERM finishes the batch in hand and stops.")

    def add_arguments(self, parser):
        parser.add_argument("--max-items", type=int, default=256, help="pairs scored together at most")
        parser.add_argument("--max-wait-ms", type=float, default=5.0,
                            help="how long a batch waits for more requests after its first")

    def handle(self, *args, max_items: int, max_wait_ms: float, **options):
        if not settings.REDIS_URL:
            raise CommandError("a reward server needs REDIS_URL (the web processes reach it over Redis)")
        if max_items < 1 or not 0 <= max_wait_ms <= 1000:
            raise CommandError("--max-items must be at least 1 and --max-wait-ms from 0 to 1000")
        from serving.server import RewardServer

        server = RewardServer(max_items=max_items, max_wait_s=max_wait_ms / 1000)
        signal.signal(signal.SIGTERM, lambda *_: server.stop())
        self.stderr.write(f"reward server {server.name}: waiting for requests (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        stats = server.stats
        self.stderr.write(f"reward server {server.name}: {stats.requests} requests, {stats.items} items in "
                          f"{stats.batches} batches, {stats.swaps} version swaps")
