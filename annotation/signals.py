"""Signals annotation sends so that higher apps can react without annotation importing them.

``ranking_submitted`` is sent inside the submission's transaction, with the task row locked, after the ranking is
stored and counted (``created`` False for a correction; ``task.submitted_count`` already includes it). Receivers may
change the task's ``target_overlap`` or ``status`` *on the instance they are given*; submission saves both once the
receivers are done (and completes the task when its count reaches the project's target for it), so a receiver never
writes the task row itself. The quality app listens (dynamic overlap, gold scoring): see ``quality.signals``.

``import_finished`` is sent once an ImportRun is recorded as succeeded or failed, after that write commits
(``annotation.import_runs``). The notifications app listens (webhooks).
"""

from django.dispatch import Signal

ranking_submitted = Signal()  # kwargs: ranking, task, created
import_finished = Signal()  # kwargs: run (an ImportRun, succeeded or failed)
