"""A production start (DEBUG=0) refuses a half-done configuration; `check --deploy` says why."""

import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from helpdesk.deploy import deploy_problems
from helpdesk.settings import _RATE_LIMIT_DEFAULTS, _redis_database_other

ROOT = Path(__file__).resolve().parents[2]

# Everything DEBUG=0 needs; nothing is contacted while the settings load.
PRODUCTION = {
    "DEBUG": "0",
    "HELPDESK_TESTING": "0",
    "ENV_FILE": "",  # never the checkout's development .env
    "SECRET_KEY": "prod-key-" + "x7Q" * 20,
    "DATABASE_URL": "postgres://helpdesk:pw@db.invalid:5432/helpdesk",
    "REDIS_URL": "redis://redis.invalid:6379/0",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "pm-token",
    "OPENSRS_URL": "https://rr-n1-tor.opensrs.net:55443/",
    "OPENSRS_USERNAME": "exabytes",
    "OPENSRS_KEY": "0123456789abcdef0123456789abcdef",
    "SITE_URL": "https://help.exabytes.example",
    "ALLOWED_HOSTS": "help.exabytes.example",
    "ANYMAIL_WEBHOOK_SECRET": "esp:hook-secret-Xq7pL2vR9",
}

# (variable, value that breaks it or None to leave it out, what the refusal must say)
BROKEN = [
    ("SECRET_KEY", None, "SECRET_KEY: not set"),
    ("DATABASE_URL", None, "DATABASE_URL: must name a PostgreSQL database"),
    ("DATABASE_URL", "sqlite:///var/prod.sqlite3", "DATABASE_URL: must name a PostgreSQL"),
    ("REDIS_URL", None, "REDIS_URL: not set"),
    ("EMAIL_BACKEND", None, "EMAIL_BACKEND: anymail.backends.test.EmailBackend delivers no"),
    ("EMAIL_BACKEND", "anymail.backends.console.EmailBackend", "delivers no email"),
    ("ANYMAIL_POSTMARK_SERVER_TOKEN", None, "ANYMAIL_POSTMARK_SERVER_TOKEN: not set"),
    ("OPENSRS_URL", None, "OPENSRS_URL: must be the reseller API's https address"),
    ("OPENSRS_USERNAME", None, "OPENSRS_USERNAME: not set"),
    ("OPENSRS_KEY", None, "OPENSRS_KEY: not set"),
    ("SITE_URL", None, "SITE_URL: must be https://"),
    ("SITE_URL", "http://help.exabytes.example", "SITE_URL: must be https://"),
    ("ALLOWED_HOSTS", "elsewhere.example", "ALLOWED_HOSTS: does not include SITE_URL's host"),
    ("ANYMAIL_WEBHOOK_SECRET", None, "ANYMAIL_WEBHOOK_SECRET: not set"),
    # Set, but guessable: whoever guesses them signs links and tokens, or posts forged mail.
    ("SECRET_KEY", "changeme", "SECRET_KEY: too short or too simple to be secret"),
    ("SECRET_KEY", "a" * 60, "SECRET_KEY: too short or too simple to be secret"),
    ("SECRET_KEY", "django-insecure-" + "x7Q" * 20, "SECRET_KEY: too short or too simple"),
    ("SECRET_KEY_FALLBACKS", "old-key", "SECRET_KEY_FALLBACKS: a key is too short"),
    ("ALLOWED_HOSTS", "*", "ALLOWED_HOSTS: * lets any Host header in"),
    ("ALLOWED_HOSTS", "help.exabytes.example,*", "ALLOWED_HOSTS: * lets any Host header in"),
    ("ANYMAIL_WEBHOOK_SECRET", ":", "ANYMAIL_WEBHOOK_SECRET: needs a user and a password"),
    ("ANYMAIL_WEBHOOK_SECRET", "esp:", "ANYMAIL_WEBHOOK_SECRET: needs a user and a password"),
    ("ANYMAIL_WEBHOOK_SECRET", ":" + "p" * 30, "ANYMAIL_WEBHOOK_SECRET: needs a user"),
    ("ANYMAIL_WEBHOOK_SECRET", "esp:hook", "ANYMAIL_WEBHOOK_SECRET: needs a user and a password"),
]


def _settings_load(environ: dict[str, str], then: str = "") -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own code, run by this interpreter
        [sys.executable, "-c", "import helpdesk.settings" + then],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_debug_0_refuses_to_start_without_each_required_variable_and_names_it():
    runs = {}
    for variable, value, _message in BROKEN:
        environ = dict(PRODUCTION)
        if value is None:
            del environ[variable]
        else:
            environ[variable] = value
        runs[(variable, value)] = _settings_load(environ)
    complete = _settings_load(PRODUCTION)

    _out, err = complete.communicate(timeout=60)
    assert complete.returncode == 0, err
    for variable, value, message in BROKEN:
        process = runs[(variable, value)]
        _out, err = process.communicate(timeout=60)
        assert process.returncode != 0, (variable, value)
        last = err.strip().splitlines()
        refusal = err[err.index("ImproperlyConfigured: DEBUG=0") :]
        assert message in refusal, (variable, value, last[-3:])
        # Only what is wrong is named.
        assert refusal.count("\n  - ") == 1, refusal


def test_the_refusal_lists_every_missing_variable_at_once():
    process = _settings_load({"DEBUG": "0", "HELPDESK_TESTING": "0", "ENV_FILE": ""})
    _out, err = process.communicate(timeout=60)

    assert process.returncode != 0
    for variable in (
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "EMAIL_BACKEND",
        "OPENSRS_URL",
        "OPENSRS_USERNAME",
        "OPENSRS_KEY",
        "SITE_URL",
        "ANYMAIL_WEBHOOK_SECRET",
    ):
        assert f"  - {variable}: " in err


def test_smtp_backend_needs_its_host():
    environ = {
        **PRODUCTION,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    }
    without_host = _settings_load(environ)
    with_host = _settings_load({**environ, "EMAIL_HOST": "smtp.exabytes.example"})

    _out, err = without_host.communicate(timeout=60)
    assert without_host.returncode != 0
    assert "EMAIL_HOST: not set" in err
    _out, err = with_host.communicate(timeout=60)
    assert with_host.returncode == 0, err


def _settings_refusal(environ: dict[str, str]) -> str:
    """What the settings say as they refuse to load under `environ`."""
    process = _settings_load(environ)
    _out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    return err


def test_cache_on_the_brokers_database_is_refused_in_every_mode():
    err = _settings_refusal(
        {
            "DEBUG": "1",
            "ENV_FILE": "",
            "REDIS_URL": "redis://127.0.0.1:6379/2",
            "CACHE_URL": "redis://127.0.0.1:6379/2",
        }
    )

    assert "CACHE_URL must not be REDIS_URL's database" in err


def test_check_deploy_reports_the_same_problems_under_debug_1(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"

    with pytest.raises(SystemCheckError) as info:
        call_command("check", deploy=True)

    report = str(info.value)
    for text in (
        "helpdesk.E001",
        "OPENSRS_KEY: not set",
        "SITE_URL: must be https://",
        "ANYMAIL_WEBHOOK_SECRET: not set",
    ):
        assert text in report


def test_a_complete_configuration_has_no_problems():
    config = {
        "SECRET_KEY": PRODUCTION["SECRET_KEY"],
        "DATABASES": {"default": {"ENGINE": "django.db.backends.postgresql"}},
        "REDIS_URL": PRODUCTION["REDIS_URL"],
        "EMAIL_BACKEND": PRODUCTION["EMAIL_BACKEND"],
        "EMAIL_HOST": "",
        "ANYMAIL": {"POSTMARK_SERVER_TOKEN": "pm", "WEBHOOK_SECRET": "esp:secret-0123456789ab"},
        "OPENSRS_URL": PRODUCTION["OPENSRS_URL"],
        "OPENSRS_USERNAME": "exabytes",
        "OPENSRS_KEY": "a-real-key",
        "SITE_URL": PRODUCTION["SITE_URL"],
        "ALLOWED_HOSTS": [".exabytes.example"],
    }

    assert deploy_problems(config) == []
    assert deploy_problems({**config, "ALLOWED_HOSTS": ["exabytes.example"]}) == [
        "ALLOWED_HOSTS: does not include SITE_URL's host help.exabytes.example"
    ]
    # A rotated key of the same strength is fine; a weak one still verifies signatures.
    rotated = {**config, "SECRET_KEY_FALLBACKS": ["old-" + "k9Z" * 20]}
    assert deploy_problems(rotated) == []
    assert deploy_problems({**config, "SECRET_KEY_FALLBACKS": ["old", "old-" + "k9Z" * 20]}) == [
        "SECRET_KEY_FALLBACKS: a key is too short or too simple to be secret (at least 50 "
        "characters, 5 of them different, e.g. python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))')"
    ]


def test_cache_database_defaults_to_another_one_counted_from_the_top():
    assert _redis_database_other("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/15"
    assert (
        _redis_database_other("redis://:pw@r.internal:6380/2") == "redis://:pw@r.internal:6380/13"
    )
    assert _redis_database_other("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379/15"


def _test_process(worker: str, **environ: str) -> dict[str, str]:
    """The environment of test process `worker` (gw0, gw1, ...), with `environ` added."""
    return {"HELPDESK_TESTING": "1", "ENV_FILE": "", "PYTEST_XDIST_WORKER": worker, **environ}


def _test_process_settings(worker: str, **environ: str) -> list[str]:
    """The broker, the cache and the files' folder of test process `worker` under `environ`."""
    process = _settings_load(
        _test_process(worker, **environ),
        then="; from helpdesk import settings as s"
        "; print(s.CELERY_BROKER_URL, s.CACHE_URL, s.VAR_DIR.relative_to(s.BASE_DIR))",
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out.split()


def test_each_test_process_has_redis_databases_and_files_of_its_own():
    redis_10 = {"REDIS_URL": "redis://127.0.0.1:6379/10"}

    # the broker counts up from REDIS_URL's database, the cache down from the top
    assert _test_process_settings("gw0", **redis_10) == [
        "redis://127.0.0.1:6379/10",
        "redis://127.0.0.1:6379/5",
        "var/gw0",
    ]
    assert _test_process_settings("gw1", **redis_10) == [
        "redis://127.0.0.1:6379/12",
        "redis://127.0.0.1:6379/3",
        "var/gw1",
    ]
    # a CACHE_URL of its own counts down from there
    assert _test_process_settings("gw1", **redis_10, CACHE_URL="redis://127.0.0.1:6379/9")[:2] == [
        "redis://127.0.0.1:6379/12",
        "redis://127.0.0.1:6379/7",
    ]


def test_a_test_process_on_sqlite_with_redis_as_the_broker_has_its_database_folder(tmp_path):
    # given a checkout whose files' folder has no test process's folder yet (a fresh clone)
    process = _settings_load(
        _test_process("gw1", REDIS_URL="redis://127.0.0.1:6379/10", VAR_DIR=str(tmp_path / "var")),
        then="; from helpdesk import settings as s; print(s.DATABASES['default']['TEST']['NAME'])",
    )

    # when its settings load, then the folder of its SQLite test database is there
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    database = Path(out.strip())
    assert database == tmp_path / "var" / "gw1" / "test-db.sqlite3"
    assert database.parent.is_dir()


def test_too_many_test_processes_for_the_redis_databases_are_refused():
    err = _settings_refusal(_test_process("gw2", REDIS_URL="redis://127.0.0.1:6379/12"))

    assert "Redis has no database 16 for test gw2" in err


def test_clearing_the_cache_leaves_the_brokers_queues(settings, redis_urls):
    broker = redis.Redis.from_url(redis_urls.broker)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_urls.cache,
        }
    }
    queue = "hd-test-broker-queue-survives"
    broker.rpush(queue, "a queued task")
    try:
        caches["default"].set("counter", 1)

        caches["default"].clear()

        assert caches["default"].get("counter") is None
        assert broker.lrange(queue, 0, -1) == [b"a queued task"]
    finally:
        broker.delete(queue)
        broker.close()


def test_env_example_lists_every_rate_limit_by_its_variable_and_default():
    # CONTRACT.md: RATE_LIMIT_<NAME>, the names listed in .env.example.
    example = (ROOT / ".env.example").read_text()

    missing = [
        f"RATE_LIMIT_{name.upper()}={count}/{seconds}"
        for name, (count, seconds) in _RATE_LIMIT_DEFAULTS.items()
        if f"# RATE_LIMIT_{name.upper()}={count}/{seconds}\n" not in example
    ]

    assert missing == []


def _web_app_load(**environ: str) -> subprocess.Popen:
    environ = {"DEBUG": "1", "HELPDESK_TESTING": "0", "ENV_FILE": "", **environ}
    return _settings_load(environ, then="; import helpdesk.wsgi, helpdesk.asgi")


def test_the_web_app_refuses_debug_1_for_a_site_url_that_is_not_this_machine():
    # Django's debug pages show the settings, REDIS_URL's password among them, to any visitor.
    public = _web_app_load(SITE_URL="https://help.exabytes.example")
    local = {
        site_url: _web_app_load(SITE_URL=site_url)
        for site_url in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000")
    }
    # README: `check --deploy` runs under DEBUG=1 against a candidate configuration.
    command = _settings_load(
        {"DEBUG": "1", "HELPDESK_TESTING": "0", "ENV_FILE": "", "SITE_URL": PRODUCTION["SITE_URL"]}
    )

    _out, err = public.communicate(timeout=60)
    assert public.returncode != 0
    assert "DEBUG=1 shows stack traces and settings to every visitor" in err
    assert "SITE_URL (https://help.exabytes.example) is not this machine" in err
    for site_url, process in local.items():
        _out, err = process.communicate(timeout=60)
        assert process.returncode == 0, (site_url, err)
    _out, err = command.communicate(timeout=60)
    assert command.returncode == 0, err
