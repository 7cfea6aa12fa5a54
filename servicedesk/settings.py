"""Settings for the service desk.

One file, driven by environment variables, with safe development defaults:
with nothing set, the desk runs on an embedded SQLite database, prints emails
to the console and runs background jobs through django-q2's ORM broker.
Production sets DJANGO_DEBUG=0, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS,
DATABASE_URL and usually REDIS_URL (see docs/deployment.md).
"""

import os
from importlib.util import find_spec
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


DEBUG = env_bool("DJANGO_DEBUG", True)

_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = env("DJANGO_SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")

ALLOWED_HOSTS = [h.strip() for h in env("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("DJANGO_CSRF_TRUSTED_ORIGINS").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_fsm",
    "django_q",
    "phonenumber_field",
    "axes",
    "csp",
    "accounts",
    "tickets",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

# N+1 query detection (django-zeal, a development dependency): on in development
# and tests when installed; it logs in development and raises in tests.
if DEBUG and env_bool("DJANGO_ZEAL", find_spec("zeal") is not None):
    INSTALLED_APPS.append("zeal")
    MIDDLEWARE.append("zeal.middleware.zeal_middleware")
ZEAL_RAISE = False
# Django's own session code reads the session row twice on login/logout.
ZEAL_ALLOWLIST = [{"model": "sessions.Session"}]

ROOT_URLCONF = "servicedesk.urls"
WSGI_APPLICATION = "servicedesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tickets.context_processors.notifications",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# Embedded default: SQLite in WAL mode with IMMEDIATE transactions, so the web
# server and the django-q2 worker can write side by side without "database is
# locked". Production: DATABASE_URL=postgres://… with Django's connection pool.
DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})
        if env_bool("DATABASE_POOL", True):
            DATABASES["default"]["OPTIONS"]["pool"] = {
                "min_size": env_int("DATABASE_POOL_MIN", 2),
                "max_size": env_int("DATABASE_POOL_MAX", 10),
            }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", str(BASE_DIR / "var" / "db.sqlite3")),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=20000;"
                    "PRAGMA foreign_keys=ON;"
                ),
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "servicedesk"}}

# --- Accounts and authentication -------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 8)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Our login forms post the email as "username"; count failures by it, lower-cased.
AXES_USERNAME_CALLABLE = "accounts.forms.lockout_username"
AXES_LOCKOUT_TEMPLATE = "accounts/lockout.html"

PHONENUMBER_DEFAULT_REGION = env("PHONENUMBER_DEFAULT_REGION", "CN")
PHONENUMBER_DB_FORMAT = "E164"

# --- Internationalisation --------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("DJANGO_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static and private files ----------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Customer photos are private: they live outside any URL the web server
# publishes and are served only by tickets.views.attachments after an access
# check. There is deliberately no MEDIA_URL for them.
PRIVATE_MEDIA_ROOT = Path(env("PRIVATE_MEDIA_ROOT", str(BASE_DIR / "var" / "private")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT, "base_url": None},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        ),
    },
}

# The upload pipeline's limits (tickets/images.py).
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 12 * 1024 * 1024)
ATTACHMENT_MAX_PIXELS = env_int("ATTACHMENT_MAX_PIXELS", 50_000_000)
# PNG and WebP are decoded at full size (JPEG can be decoded scaled down): a lower limit.
ATTACHMENT_MAX_PIXELS_FULL_DECODE = env_int("ATTACHMENT_MAX_PIXELS_FULL_DECODE", 16_000_000)
ATTACHMENT_MAX_SIDE = env_int("ATTACHMENT_MAX_SIDE", 4096)
ATTACHMENT_THUMBNAIL_SIDE = 320
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- Email -------------------------------------------------------------------
EMAIL_URL = env("EMAIL_URL")
if EMAIL_URL:
    _email = dj_database_url.parse(EMAIL_URL.replace("smtp+tls://", "smtp://").replace("smtps://", "smtp://"))
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email["HOST"]
    EMAIL_PORT = int(_email["PORT"] or 587)
    EMAIL_HOST_USER = _email["USER"]
    EMAIL_HOST_PASSWORD = _email["PASSWORD"]
    EMAIL_USE_TLS = EMAIL_URL.startswith("smtp+tls://")
    EMAIL_USE_SSL = EMAIL_URL.startswith("smtps://")
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))  # for the file-based backend
    EMAIL_HOST = env("EMAIL_HOST", "localhost")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Repair Service <service@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Background jobs (django-q2) ----------------------------------------------
# Embedded default: the ORM broker on the same database. With REDIS_URL set,
# Redis is the broker. Q_SYNC=1 (tests) runs tasks inline.
Q_CLUSTER = {
    "name": env("Q_NAME", "servicedesk"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 60),
    "retry": env_int("Q_RETRY", 120),  # must exceed timeout, or a slow task runs twice
    "max_attempts": 5,
    "queue_limit": 50,
    "bulk": 10,
    "catch_up": False,
    "save_limit": 1000,
    "sync": env_bool("Q_SYNC", False),
    "label": _("Background jobs"),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# --- Security headers -----------------------------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],  # blob: for photo previews before upload
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Logging ----------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Anonymous tracking (/track/): failed look-ups allowed per client within the window.
TRACK_MAX_FAILURES = env_int("TRACK_MAX_FAILURES", 10)
TRACK_WINDOW_SECONDS = env_int("TRACK_WINDOW_SECONDS", 15 * 60)
# How many reverse proxies in front of the app append to X-Forwarded-For (0: none).
TRACK_TRUSTED_PROXIES = env_int("TRACK_TRUSTED_PROXIES", 0)

# A customer whose service credit is low may have this many open tickets submitted online.
SERVICE_CREDIT_LOW_MAX_OPEN_TICKETS = env_int("SERVICE_CREDIT_LOW_MAX_OPEN_TICKETS", 1)

# Absolute base URL for links in emails, SMS and QR codes made outside a request.
SITE_URL = env("SITE_URL", "http://localhost:8000")

# --- Notifications and stalled tickets (tickets/notify.py, tickets/tasks.py) ---
SMS_BACKEND = env("SMS_BACKEND", "tickets.sms.LoggingSmsBackend")
# A message whose send fails is retried after these many minutes, then given up.
NOTIFICATION_RETRY_MINUTES = [1, 5, 15, 60]
# A send claimed longer ago than this (a worker died mid-send) may be claimed again.
NOTIFICATION_CLAIM_SECONDS = env_int("NOTIFICATION_CLAIM_SECONDS", 120)
DEVICE_ARRIVAL_DAYS = env_int("DEVICE_ARRIVAL_DAYS", 14)
DEVICE_REMINDER_DAYS_BEFORE = env_int("DEVICE_REMINDER_DAYS_BEFORE", 3)
CONTACT_REMINDER_HOURS_BEFORE = env_int("CONTACT_REMINDER_HOURS_BEFORE", 24)
STALLED_SWEEP_BATCH = env_int("STALLED_SWEEP_BATCH", 10000)
