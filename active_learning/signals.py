"""Signals active_learning sends so that higher apps can react without active_learning importing them.

``round_finished`` is sent when a SelectionRound ends done or failed (``active_learning.pipeline.execute_round``),
after that write commits, with the round as recorded. The notifications app listens (webhooks).
"""

from django.dispatch import Signal

round_finished = Signal()  # kwargs: round (a SelectionRound, done or failed)
