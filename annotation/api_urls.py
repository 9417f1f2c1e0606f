"""REST routes for annotation, mounted under /api/ by config/urls.py."""

from rest_framework.routers import DefaultRouter

from annotation import api

router = DefaultRouter()
router.register("projects", api.ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>[0-9]{1,19})/tasks", api.TaskViewSet, basename="project-task")
router.register("assignments", api.AssignmentViewSet, basename="assignment")
router.register("rankings", api.RankingViewSet, basename="ranking")

urlpatterns = router.urls
