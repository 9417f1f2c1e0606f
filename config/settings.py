"""Django settings for Verdict.

Modes (VERDICT_MODE):
  demo        laptop mode: SQLite, a file-system Celery broker, a generated secret kept in var/
  test        used by `make test`: a fixed throwaway secret, whatever DATABASE_URL / REDIS_URL say
  production  everything from the environment; see config/settings_production.py

DATABASE_URL selects PostgreSQL (SQLite otherwise); REDIS_URL selects Redis as the Celery broker.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VERDICT_VAR_DIR", BASE_DIR / "var"))
MODE = os.environ.get("VERDICT_MODE", "demo")
if MODE not in {"demo", "test", "production"}:
    raise ImproperlyConfigured(f"VERDICT_MODE must be demo, test or production, not {MODE!r}")


def _demo_secret() -> str:
    """A per-checkout random secret for demo mode, created once and kept out of git."""
    path = VAR_DIR / "demo-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Created 0600 from the start (no window in which another user could read it).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)  # written world-readable by an earlier version
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if MODE == "demo":
        SECRET_KEY = _demo_secret()
    elif MODE == "test":
        SECRET_KEY = "test-only-" + "x" * 50
    else:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set outside demo and test mode")

DEBUG = os.environ.get("DJANGO_DEBUG", "1" if MODE == "demo" else "0") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "django_celery_beat",
    "django_celery_results",
    "axes",  # login lock-out (config/abuse.py)
    "annotation",
    "quality",
    "rewardmodel",
    "feedback",
    "serving",
    "active_learning",
    "curation",  # data browser and review: reads every app below
    "notifications",
    "replay",
    "releases",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The rater pages' language: the switcher's cookie, else the browser's Accept-Language (LANGUAGES below).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

# --- Abuse controls (config/abuse.py) ---------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("VERDICT_LOGIN_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("VERDICT_LOGIN_COOLOFF_MINUTES", 15)))
# One username from one address: an attacker cannot lock a rater out from everywhere by failing on purpose.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "config.abuse.lockout_response"
# Whose address a request comes from, for lock-outs and throttles alike (config/client_address.py): the TCP peer, or
# behind VERDICT_PROXY_COUNT reverse proxies that append to X-Forwarded-For, the address the outermost one saw.
VERDICT_PROXY_COUNT = int(os.environ.get("VERDICT_PROXY_COUNT", 0))
AXES_CLIENT_IP_CALLABLE = "config.client_address.client_address"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["config.template_filters"],  # |visible everywhere (config/text.py)
        },
    },
]

if MODE == "production":
    # Workers on other machines share the database and the broker: local SQLite or a folder broker would split them.
    _missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if _missing:
        raise ImproperlyConfigured(f"{' and '.join(_missing)} must be set in production mode")

# Persistent connections by default, except in demo mode: its web server (runserver) answers each request on a new
# thread, and a kept connection outlives its thread, so every request left one open until PostgreSQL refused more
# ("too many clients": 97 of 100 were one runserver's after ~1,500 requests of the replay).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'verdict.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "0" if MODE == "demo" else "60")),
        # A kept connection is checked before each request reuses it: one the server dropped is reopened.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side parameters, so psycopg prepares a statement run five times on a connection and PostgreSQL stops
    # planning it again: planning the rater loop's queries took longer than running them (issue 25: the queue
    # query planned in 1.4 ms and ran in 1.1 ms). VERDICT_DB_PREPARED=0 turns it off (e.g. behind PgBouncer in
    # transaction mode before 1.21, which cannot keep prepared statements).
    if os.environ.get("VERDICT_DB_PREPARED", "1") != "0":
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
# Behind PgBouncer in transaction pooling, server-side cursors (QuerySet.iterator(): snapshots read rankings in
# batches through one) break; DB_DISABLE_SERVER_SIDE_CURSORS=1 turns them off, and iterator() then takes the whole
# result at once (small rows: a snapshot reads ids and orders there, its texts a batch at a time).
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = os.environ.get("DB_DISABLE_SERVER_SIDE_CURSORS") == "1"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite is the zero-setup default: wait for the write lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# What the rater pages are translated into (locale/<code>/LC_MESSAGES/django.po; docs/operators.md says how to add one):
# a browser asking for another language gets English.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]  # files that belong to no app: overrides of third-party admin pages
MEDIA_ROOT = Path(os.environ.get("VERDICT_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

if MODE == "test":
    # Test accounts guard nothing: a fast hash instead of PBKDF2's million rounds (about 0.3 s per user made or
    # logged in, which was a third of the suite's time). Demo and production keep Django's default hashers.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotation:home"
LOGOUT_REDIRECT_URL = "login"

# Request size limits: imports are streamed through the API, so 32 MiB bodies; form fields bounded.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("VERDICT_MAX_BODY_BYTES", 32 * 1024 * 1024))
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000
VERDICT_MAX_JSON_BYTES = int(os.environ.get("VERDICT_MAX_JSON_BYTES", 8 * 2**20))  # config/parsers.py
# POST /score/ runs the model in the web process: characters per call (before tokenising), and tokens per call after
# truncation for a MiniLM-sized model (fewer for a larger one; rewardmodel.scoring.token_budget).
VERDICT_SCORE_MAX_CHARS = int(os.environ.get("VERDICT_SCORE_MAX_CHARS", 1_000_000))
VERDICT_SCORE_MAX_TOKENS = int(os.environ.get("VERDICT_SCORE_MAX_TOKENS", 8_192))
# Where rewards come from (serving.gateway): auto (a reward server while one runs, else this process), required
# (503 without one: web processes never load a model), off (always this process); and how long a call waits.
VERDICT_REWARD_SERVER = os.environ.get("VERDICT_REWARD_SERVER", "auto")
VERDICT_REWARD_SERVER_TIMEOUT = float(os.environ.get("VERDICT_REWARD_SERVER_TIMEOUT", 30))

# Bounded work per import, checked while streaming before anything is parsed (annotation.rows; SECURITY.md).
VERDICT_IMPORT_MAX_BYTES = int(os.environ.get("VERDICT_IMPORT_MAX_BYTES", 4 * 2**30))  # decompressed
VERDICT_IMPORT_MAX_LINE_BYTES = int(os.environ.get("VERDICT_IMPORT_MAX_LINE_BYTES", 8 * 2**20))
VERDICT_IMPORT_MAX_ROWS = int(os.environ.get("VERDICT_IMPORT_MAX_ROWS", 2_000_000))
VERDICT_IMPORT_MAX_RATIO = float(os.environ.get("VERDICT_IMPORT_MAX_RATIO", 100))
# An API import of more lines than this leaves the request: a Celery job on the default queue (202 + its run id).
VERDICT_IMPORT_SYNC_ROWS = int(os.environ.get("VERDICT_IMPORT_SYNC_ROWS", 5_000))
# The decompressed bytes a request's scan reads before it hands a bigger upload to the job (which scans it whole).
VERDICT_IMPORT_REQUEST_SCAN_BYTES = int(os.environ.get("VERDICT_IMPORT_REQUEST_SCAN_BYTES", 256 * 2**20))
VERDICT_IMPORT_SOFT_TIME_LIMIT = int(os.environ.get("VERDICT_IMPORT_SOFT_TIME_LIMIT", 2 * 3600))
# Dataset releases made or zipped in an API request hold at most this many rankings (a few seconds' work); larger
# ones are made and exported by the create_release and export_release commands (releases.api).
VERDICT_RELEASE_API_MAX_RANKINGS = int(os.environ.get("VERDICT_RELEASE_API_MAX_RANKINGS", 10_000))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the rater page reads it to post with fetch()
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.abuse.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["config.abuse.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("VERDICT_THROTTLE_USER", "600/min"),
        "rater": os.environ.get("VERDICT_THROTTLE_RATER", "120/min"),
        "bad_token": os.environ.get("VERDICT_THROTTLE_BAD_TOKEN", "20/min"),
        "score": os.environ.get("VERDICT_THROTTLE_SCORE", "60/min"),
    },
    # DRF's own reading of X-Forwarded-For, for anything that asks it: 0 is "the peer" (None would trust the header).
    "NUM_PROXIES": VERDICT_PROXY_COUNT,
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON in (the import takes its own JSONL and multipart parsers).
    "DEFAULT_PARSER_CLASSES": ["config.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "config.faults.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "config.api_contract.VerdictAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.KeysetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Verdict API",
    "DESCRIPTION": "Ranking tasks, rankings, exports and reward-model scoring for RLHF data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status` field with different choices: give each enum its own name.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "config.api_contract.forbid_nul_characters"],
    # <id:…> path parameters (config/ids.py) are positive bigints.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}},
    "ENUM_NAME_OVERRIDES": {"SelectionRoundStatusEnum": "active_learning.models.SelectionRound.STATUSES",
                            "StrategyEnum": "active_learning.models.STRATEGY_CHOICES"},
}

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL and MODE != "test":
    # Throttle counters and lock-outs must be shared by every web process (tests keep them in-process, per test).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "verdict"}}
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Redis re-delivers an unacknowledged message after this long: it must outlast the longest training
    # (acks_late), or a running training would be handed to a second worker. A system check enforces it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("VERDICT_VISIBILITY_TIMEOUT", 6 * 3600)),
    }
else:
    # A broker that needs no server: messages are files in var/broker, shared by web, worker and beat.
    _broker_dir = VAR_DIR / "broker"
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # else kombu writes ./control in the working directory
        "store_processed": False,
    }
# Every task has soft and hard time limits (training sets its own, VERDICT_RM_*); a job whose worker is lost is
# redelivered (acks_late) at most VERDICT_MAX_DELIVERIES times in all, then recorded as failed.
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("VERDICT_TASK_SOFT_TIME_LIMIT", 30 * 60))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("VERDICT_TASK_TIME_LIMIT", 31 * 60))
VERDICT_MAX_DELIVERIES = int(os.environ.get("VERDICT_MAX_DELIVERIES", 3))
# A training saves a checkpoint every this many optimiser steps (0: only at a warm shutdown), so a redelivered job
# after a lost worker resumes instead of starting over.
VERDICT_CHECKPOINT_EVERY = int(os.environ.get("VERDICT_CHECKPOINT_EVERY", 50))
# ...and at least every this many seconds (0: by step only), so a slow run loses at most this much to a lost worker.
VERDICT_CHECKPOINT_EVERY_S = int(os.environ.get("VERDICT_CHECKPOINT_EVERY_S", 600))
# Training across processes (rewardmodel.distributed, torchrun + DDP): processes per machine ("auto": one per GPU),
# machines, and the first machine's rendezvous host:port when there are several.
VERDICT_TRAIN_PROCESSES = os.environ.get("VERDICT_TRAIN_PROCESSES", "auto")
VERDICT_TRAIN_NODES = int(os.environ.get("VERDICT_TRAIN_NODES", 1))
VERDICT_TRAIN_RDZV_ENDPOINT = os.environ.get("VERDICT_TRAIN_RDZV_ENDPOINT", "")
VERDICT_BEAT_LOCK_TTL = int(os.environ.get("VERDICT_BEAT_LOCK_TTL", 60))  # config/beat_lock.py
# A process that loads torch keeps its memory: recycle worker processes after this many tasks (0: never). The GPU
# worker in deploy/docker-compose.yml recycles after every task.
CELERY_WORKER_MAX_TASKS_PER_CHILD = int(os.environ.get("VERDICT_WORKER_MAX_TASKS_PER_CHILD", 0)) or None
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ROUTES = {
    # Exact names win over patterns: the retrain check only reads the database and queues a training.
    "rewardmodel.tasks.check_retrain_schedules": {"queue": "default"},
    "rewardmodel.tasks.requeue_lost_trainings": {"queue": "default"},
    "active_learning.tasks.requeue_lost_rounds": {"queue": "default"},
    "rewardmodel.tasks.*": {"queue": "gpu"},
    "active_learning.tasks.*": {"queue": "gpu"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = os.environ.get("CELERY_TASK_ALWAYS_EAGER", "0") == "1"

# --- Reward models --------------------------------------------------------------------------
VERDICT_MODEL_ROOT = Path(os.environ.get("VERDICT_MODEL_ROOT", VAR_DIR / "models"))
VERDICT_RM_SOFT_TIME_LIMIT = int(os.environ.get("VERDICT_RM_SOFT_TIME_LIMIT", 3 * 3600))  # seconds per training
VERDICT_RM_TIME_LIMIT = int(os.environ.get("VERDICT_RM_TIME_LIMIT", VERDICT_RM_SOFT_TIME_LIMIT + 600))
# Refreshed every third of it by a thread while a training runs: a lost worker's job is requeued after it lapses.
VERDICT_RM_LOCK_TTL = int(os.environ.get("VERDICT_RM_LOCK_TTL", 120))
# Beat's schedule as first created by `migrate` (afterwards it is edited under Periodic tasks in the admin), seconds:
# the retrain check and the requeue of lost trainings and rounds.
VERDICT_RETRAIN_CHECK_EVERY = int(os.environ.get("VERDICT_RETRAIN_CHECK_EVERY", 600))
VERDICT_REQUEUE_LOST_EVERY = int(os.environ.get("VERDICT_REQUEUE_LOST_EVERY", 120))
VERDICT_AL_SOFT_TIME_LIMIT = int(os.environ.get("VERDICT_AL_SOFT_TIME_LIMIT", 15 * 60))  # seconds per round
VERDICT_AL_TIME_LIMIT = int(os.environ.get("VERDICT_AL_TIME_LIMIT", VERDICT_AL_SOFT_TIME_LIMIT + 60))

# --- Webhooks (notifications/) ----------------------------------------------------------------
# Seconds per socket operation of one POST (connect, each read); attempts per delivery in all; the first retry's
# delay in seconds, doubled at each further one (30, 60, 120, 240 by default).
VERDICT_WEBHOOK_TIMEOUT_S = float(os.environ.get("VERDICT_WEBHOOK_TIMEOUT_S", 5))
VERDICT_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("VERDICT_WEBHOOK_MAX_ATTEMPTS", 5))
VERDICT_WEBHOOK_BACKOFF_S = float(os.environ.get("VERDICT_WEBHOOK_BACKOFF_S", 30))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One line per event, with time and source, so `docker compose logs` of several services can be followed.
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": os.environ.get("VERDICT_LOG_LEVEL", "INFO")},
    # The judges' HTTP client logs every request at INFO: one line per question is noise, failures surface anyway.
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpx2", "openai")},
}
