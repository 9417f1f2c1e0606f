from django.apps import AppConfig


class CurationConfig(AppConfig):
    """The manager's data browser (search, filter, bulk actions) and review of rankings: reads every lower app."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "curation"
    verbose_name = "Curation: data browser and review"
