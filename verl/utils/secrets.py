"""Secrets (API keys, tokens) kept out of logs, metrics, the WandB config, checkpoints and file names.

Redaction is by value: a secret is the value of an environment variable (or an `align.json` env var)
whose *name* says it is one (`WANDB_API_KEY`, `HF_TOKEN`, `*_SECRET`, `*_PASSWORD`...). Wherever that
value shows up in text, it is replaced with `***`; a config key that merely contains "token"
(`actor_rollout_ref.model.action_token_len`) is left alone.

Secrets are also handed out only where they are used: the workers and simulators need none (they
read local files), and only the driver's tracker talks to WandB. So secret variables (`driver_only`)
never enter the Ray runtime env, the environment of a local Ray instance and its workers and
simulators, Ray's job record or Ray's logs (its runtime-env agent logs the env vars it is given).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Names of variables whose values are secrets: a whole name part (HF_TOKEN, AWS_SECRET_ACCESS_KEY,
# DB_PASSWORD) or an *_API_KEY; not TOKENIZERS_PARALLELISM.
SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|APIKEY|CREDENTIALS?)(_|$)|(API|ACCESS|PRIVATE)_KEY", re.IGNORECASE
)
# Variables only the driver process needs, besides every secret-named one.
DRIVER_ONLY_VARS = ("WANDB_API_KEY",)
# Ray's own credentials (token authentication) must reach Ray.
_RAY_PREFIX = "RAY_"
# Shorter values are not treated as secrets: scrubbing "1" or "true" everywhere would garble logs,
# and no real key is this short.
MIN_SECRET_LEN = 8
MASK = "***"

_registered: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Treat `values` as secrets in this process from now on (e.g. the keys read from align.json)."""
    _registered.update(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN)


def secrets_in(env: Mapping[str, str]) -> set[str]:
    """The secret values of a variable mapping (by variable name)."""
    return {
        v for k, v in env.items() if SECRET_NAME.search(k) and isinstance(v, str) and len(v) >= MIN_SECRET_LEN
    }


def driver_only(names: Iterable[str]) -> list[str]:
    """The variable names among `names` that must stay in the driver process."""
    return [
        k for k in names if (k in DRIVER_ONLY_VARS or SECRET_NAME.search(k)) and not k.startswith(_RAY_PREFIX)
    ]


def secret_values() -> set[str]:
    return secrets_in(os.environ) | _registered


def scrub(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every secret value replaced by `***` (longest first, so no fragment survives)."""
    for value in sorted(secret_values() if secrets is None else secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact(obj: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of a nested dict/list/tuple with secret values scrubbed from every string, keys included."""
    secrets = secret_values() if secrets is None else set(secrets)
    if isinstance(obj, str):
        return scrub(obj, secrets)
    if isinstance(obj, Mapping):
        return {redact(k, secrets): redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v, secrets) for v in obj]
    return obj


def install_log_scrubber() -> None:
    """Scrub secrets from every log record this process creates (any logger, any handler)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_verl_scrubber", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        secrets = secret_values()
        if secrets:
            message = record.getMessage()
            clean = scrub(message, secrets)
            if clean != message:
                record.msg, record.args = clean, None
        return record

    make_record._verl_scrubber = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
