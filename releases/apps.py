from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    """Named, immutable dataset releases of a project's rankings, exported as Hugging Face `datasets` folders."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "releases"
    verbose_name = "Dataset releases"
