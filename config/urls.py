from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.api_contract import api_not_found
from config.ids import IdConverter

# <id:…> in every app's URLs: a positive bigint, or the route does not match (config/ids.py). Registered before the
# apps' URL modules are imported by include() below.
register_converter(IdConverter, "id")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the rater pages' language switcher
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/", include("annotation.api_urls")),
    path("api/", include("quality.api_urls")),
    path("api/", include("rewardmodel.api_urls")),
    path("api/", include("feedback.api_urls")),
    path("api/", include("serving.api_urls")),
    path("api/", include("active_learning.api_urls")),
    path("api/", include("curation.api_urls")),
    path("api/", include("notifications.api_urls")),
    path("api/", include("releases.api_urls")),
    re_path(r"^api/", api_not_found),  # unknown API paths answer JSON too
    path("", include("annotation.urls")),
]
