"""Which config values are secrets, and their redacted form for every file, log line and logger.

A secret (a W&B API key, a hub token) is used by the program as given, but only its redacted form `***` is
written: configs are redacted by key (`redact_secrets`), Hydra's override strings by parsing them
(`redact_override`), and free text such as log lines by the values seen so far plus a `key=value` pattern
(`redact_text`). A run redone from its saved config therefore needs each redacted secret supplied again, from an
environment variable (`WANDB_API_KEY`) or the command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

#: Words that make a config key a secret (`api_key`, `hub_token`, `clientSecret`, `db_password`, ...). A key is
#: split into words, so counts such as `num_virtual_tokens` and names such as `tokenizer` are not secrets.
SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")
REDACTED = "***"

_SECRET_WORDS = frozenset({"apikey", "token", "secret", "secrets", "password", "passwd", "credentials"})
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key")})
#: Shorter values are not replaced inside free text (a 3-letter secret would blank out ordinary words); they are
#: still redacted wherever their key is seen.
MIN_LITERAL = 6
_known: set[str] = set()

_PAIR = re.compile(
    r"(?P<key>[A-Za-z0-9_\-]+)(?P<sep>['\"]?\s*[:=]\s*)(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;'\"(){}\[\]]+)"
)


def is_secret_key(key: Any) -> bool:
    """Whether a config key names a secret, judged by its words (snake_case, kebab-case, dotted or camelCase)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(key)).lower()
    words = re.findall(r"[a-z0-9]+", text)
    pairs = zip(words, words[1:], strict=False)
    return any(word in _SECRET_WORDS for word in words) or any(pair in _SECRET_PAIRS for pair in pairs)


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def redact_secrets(value: Any, keep_interpolations: bool = False) -> Any:
    """A copy of a nested config (dicts and lists) with every secret key's value replaced by `***`.

    `keep_interpolations` leaves a secret given as `${oc.env:NAME}` as it is: the text names where the secret
    comes from, not the secret, and keeps the saved config runnable.
    """
    if isinstance(value, dict):
        return {
            k: v
            if is_secret_key(k) and keep_interpolations and _is_interpolation(v)
            else REDACTED
            if is_secret_key(k) and v is not None
            else redact_secrets(v, keep_interpolations)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(v, keep_interpolations) for v in value]
    return value


def secret_values(value: Any, under_secret: bool = False) -> set[str]:
    """Every string value below a secret key of a nested config (interpolations excluded), to redact in free text."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            found |= secret_values(v, under_secret or is_secret_key(k))
    elif isinstance(value, list | tuple):
        for v in value:
            found |= secret_values(v, under_secret)
    elif under_secret and value is not None and not isinstance(value, bool):
        text = str(value)
        if text != REDACTED and not _is_interpolation(text):
            found.add(text)
    return found


def remember_secrets(values: Iterable[str]) -> None:
    """Values `redact_text` blanks out from now on in this process (the log filter and the saved Hydra files)."""
    _known.update(v for v in values if len(v) >= MIN_LITERAL)


def known_secrets() -> set[str]:
    """Secrets seen in configs so far, plus the values of secret-named environment variables (`WANDB_API_KEY`)."""
    from_env = {v for k, v in os.environ.items() if is_secret_key(k) and len(v) >= MIN_LITERAL}
    return _known | from_env


def redact_text(text: str, known: Iterable[str] | None = None) -> str:
    """Free text (a log line, a YAML file, a command line) with known secret values and `secret_key=value` /
    `secret_key: value` pairs replaced by `***`."""
    for secret in sorted(known_secrets() if known is None else known, key=len, reverse=True):
        text = text.replace(secret, REDACTED)

    def pair(match: re.Match[str]) -> str:
        value = match["value"].strip("'\"")
        if not is_secret_key(match["key"]) or value in (REDACTED, "null", "None", "") or value.startswith("$"):
            return match[0]
        quote = match["value"][0] if match["value"][0] in "'\"" else ""
        return f"{match['key']}{match['sep']}{quote}{REDACTED}{quote}"

    return _PAIR.sub(pair, text)


def _key_is_secret(dotted: str) -> bool:
    return any(is_secret_key(part) for part in re.split(r"[.@/]", dotted.lstrip("+~")))


def redact_override(text: str) -> str:
    """A Hydra command-line override with its secrets replaced: `+a.token=x` -> `+a.token=***`, and
    `+logger.wandb.settings={api_key:x}` -> `+logger.wandb.settings={api_key:***}`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, Override

    head, sep, _ = text.partition("=")
    if not sep:
        return text
    if _key_is_secret(head):
        return f"{head}={REDACTED}"
    try:
        override = OverridesParser.create().parse_override(text)
    except Exception:  # not parseable as an override (cannot happen for Hydra's own): fall back to text rules
        return redact_text(text)
    value = override._value
    if isinstance(value, ChoiceSweep):
        items = [redact_secrets(Override._convert_value(v)) for v in value.list]
        if items == [Override._convert_value(v) for v in value.list]:
            return redact_text(text)
        return f"{head}=" + ",".join(Override._get_value_element_as_str(v) for v in items)
    if isinstance(value, dict | list):
        plain = Override._convert_value(value)
        redacted = redact_secrets(plain)
        if redacted != plain:
            return f"{head}={Override._get_value_element_as_str(redacted)}"
    return redact_text(text)
