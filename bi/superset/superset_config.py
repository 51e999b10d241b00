"""Superset's configuration for `make bi` (SUPERSET_CONFIG_PATH points here; docs/bi.md).

A local, single-user Superset over the published tier: its metadata database is SQLite under
$FLSDB_BI_HOME (default .bi/ in the project, rebuilt from scratch by every `make bi`), no Redis,
no Celery, no examples, and nothing that calls out to the internet. The SECRET_KEY is generated
once per install into $FLSDB_BI_HOME/secret_key (mode 0600, never committed).
"""

import os
from pathlib import Path

BI_HOME = Path(os.environ["FLSDB_BI_HOME"])

SECRET_KEY = (BI_HOME / "secret_key").read_text(encoding="utf-8").strip()
SQLALCHEMY_DATABASE_URI = f"sqlite:///{BI_HOME / 'superset.db'}?check_same_thread=false"
SQLALCHEMY_EXAMPLES_URI = None  # examples are never loaded
DATA_DIR = str(BI_HOME)

# No Redis: caches in memory or none. Query results are never cached (NullCache), so a new
# publication of the published file is seen by the next query.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
THUMBNAIL_CACHE_CONFIG = {"CACHE_TYPE": "NullCache", "CACHE_NO_NULL_WARNING": True}
RATELIMIT_STORAGE_URI = "memory://"
RESULTS_BACKEND = None

FEATURE_FLAGS = {
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
    "DASHBOARD_VIRTUALIZATION": False,  # render every chart, also below the fold
    "ENABLE_TEMPLATE_PROCESSING": False,
    "SQLLAB_BACKEND_PERSISTENCE": True,
}

# Nothing phones home. The page footer's usage pixel and the map tile servers are left out of
# the Content Security Policy, so the browser never requests them; no fonts from the internet.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
THEME_FONT_URL_ALLOWED_DOMAINS = []
MAPBOX_API_KEY = ""
DEFAULT_MAPBOX_API_KEY = ""
BUG_REPORT_URL = None
DOCUMENTATION_URL = None
TROUBLESHOOTING_LINK = ""
WEBDRIVER_BASEURL = "http://127.0.0.1:8088/"

APP_NAME = "FLS-DB (published tier)"
# Reading an uploaded file into a database, or a database that is not the published tier: off.
CSV_EXTENSIONS = set()
EXCEL_EXTENSIONS = set()
COLUMNAR_EXTENSIONS = set()
ALLOWED_EXTENSIONS = set()
