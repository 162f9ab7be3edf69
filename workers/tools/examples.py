"""The examples that ship with Hookline: the rules directory `hookline init` writes out, and the event payloads
`hookline demo` posts.

Each is the checkout's own folder, the one copy: `workers/tools/example_rules` is a link to `rules/` and
`workers/tools/example_events` one to `examples/`, and pyproject's package-data puts the files they link to into
the wheel, so an installed Hookline carries them too. Owns finding and copying them; never reads or validates a
rules directory (that is `wiring.rulesdir`'s) nor an event (the demo's own).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath


def shipped() -> Traversable:
    """The shipped example rules directory (in a checkout: `rules/`, through the link)."""
    return resources.files("workers.tools") / "example_rules"


def event(name: str) -> bytes:
    """The example payload `name` (`shop-order.json`; in a checkout: `examples/`, through the link)."""
    return (resources.files("workers.tools") / "example_events" / name).read_bytes()


def files(root: Traversable | None = None, prefix: PurePosixPath | None = None) -> Iterator[
        tuple[PurePosixPath, Traversable]]:
    """Every example file as (path inside the directory, file), sorted; caches and hidden files left out."""
    root = shipped() if root is None else root
    prefix = PurePosixPath() if prefix is None else prefix
    for item in sorted(root.iterdir(), key=lambda t: t.name):
        if item.name.startswith((".", "__")):
            continue
        if item.is_dir():
            yield from files(item, prefix / item.name)
        else:
            yield prefix / item.name, item


def clashes(target: Path) -> list[Path]:
    """The files writing the examples into `target` would overwrite."""
    return [target / rel for rel, _ in files() if (target / rel).exists()]


def write(target: Path) -> list[Path]:
    """Copy every example file into `target` (made if missing); return the files written."""
    written = []
    for rel, item in files():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.read_bytes())
        written.append(path)
    return written
