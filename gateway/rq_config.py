"""Where `rq worker` and `rq cron` find Redis (`--config gateway.rq_config`, the Procfile): the
primary the web uses, by REDIS_URL or through REDIS_SENTINELS. Read from the environment, so
no password goes on a command line."""

from gateway.failover import rq_settings
from gateway.settings import Settings

_settings = rq_settings(Settings.from_env())
REDIS_URL = _settings.get("REDIS_URL")  # RQ takes this when it is set...
SENTINEL = _settings.get("SENTINEL")  # ...else this
