"""Resolution of `${ENV_NAME}` references inside configuration values.

Pure: the environment is passed in as a mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def find_refs(value: Any) -> Iterator[str]:
    """Yield every variable name referenced anywhere inside `value` (strings, lists, dicts)."""
    if isinstance(value, str):
        yield from REF.findall(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from find_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from find_refs(item)


def resolve(value: Any, environ: Mapping[str, str], missing: list[tuple[str, str]], path: str = "") -> Any:
    """Return `value` with every `${NAME}` replaced from `environ`.

    A name not set is left as written and appended to `missing` as (dotted path of the field, name).
    """
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                missing.append((path, name))
                return match.group(0)
            return environ[name]

        return REF.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: resolve(v, environ, missing, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, environ, missing, path) for v in value]
    return value
