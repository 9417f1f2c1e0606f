from django.apps import AppConfig


class ReplayConfig(AppConfig):
    """Closed-loop replay: simulated raters answer with real human labels through the running platform."""

    name = "replay"
    verbose_name = "Closed-loop replay"
