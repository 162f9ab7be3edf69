"""The distribution: its import names are ours alone, it is marked private, and it carries the example rules
(`rules/`, the one copy) for `hookline init` and the example payloads (`examples/`, the one copy) for
`hookline demo`."""

import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

from workers.tools import examples

ROOT = Path(__file__).resolve().parent.parent

# setuptools' build_py, the step that fills a wheel with modules and package data, run on pyproject's own
# configuration (a whole wheel would need the `wheel` package; this is the part of it that picks the files).
_BUILD = """
import sys
from setuptools.dist import Distribution
dist = Distribution()
dist.script_name = "setup.py"
dist.parse_config_files()
build = dist.get_command_obj("build_py")
build.build_lib = sys.argv[1]
build.ensure_finalized()
build.run()
"""


def _files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_no_other_distribution_claims_our_import_names() -> None:
    claims = metadata.packages_distributions()
    for name in ("webhooks", "workers"):
        owners = set(claims.get(name, []))
        assert owners == {"hookline"}, f"{name} is claimed by {owners - {'hookline'} or 'nobody'}"


def test_distribution_is_marked_do_not_upload() -> None:
    classifiers = metadata.metadata("hookline").get_all("Classifier") or []
    assert "Private :: Do Not Upload" in classifiers


def test_console_script_points_at_the_cli() -> None:
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts["hookline"] == "workers.entry.cli:main"


def test_the_example_rules_are_a_link_to_rules_not_a_copy() -> None:
    link = ROOT / "workers/tools/example_rules"
    assert link.is_symlink() and link.resolve() == (ROOT / "rules").resolve()
    assert {rel: item.read_bytes() for rel, item in examples.files()} == _files(ROOT / "rules")


def test_the_built_package_carries_every_example_file_as_rules_holds_it(tmp_path: Path) -> None:
    # From a fresh copy of what a source distribution holds (links kept as links), so no earlier build's
    # egg-info in the checkout can supply a file the configuration forgot.
    source, out = tmp_path / "source", tmp_path / "built"
    for name in ("workers", "webhooks", "rules", "examples"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    done = subprocess.run([sys.executable, "-c", _BUILD, str(out)], cwd=source, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    built = out / "workers/tools/example_rules"
    assert not built.is_symlink()  # real files in the package, not the checkout's link
    assert _files(built) == _files(ROOT / "rules")
    assert (out / "workers/tools/examples.py").is_file()  # and the code that reads them


def test_the_example_payloads_are_a_link_to_examples_not_a_copy() -> None:
    link = ROOT / "workers/tools/example_events"
    assert link.is_symlink() and link.resolve() == (ROOT / "examples").resolve()
    for payload in (ROOT / "examples").glob("*.json"):
        assert examples.event(payload.name) == payload.read_bytes()


def test_a_built_wheel_carries_the_demos_payloads_and_the_example_rules(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as wheel:
        held = {PurePosixPath(name): wheel.read(name) for name in wheel.namelist()}
    payloads = {PurePosixPath("workers/tools/example_events", p.name): p.read_bytes()
                for p in (ROOT / "examples").glob("*.json")}
    # Those `hookline demo` posts, each as examples/ holds it (the Cal.com booking is moved and cancelled too).
    assert {p.name for p in payloads} >= {"shop-order.json", "alertmanager-firing.json", "booking-created.json",
                                          "booking-rescheduled.json", "booking-cancelled.json"}
    assert {p: held.get(p) for p in payloads} == payloads
    rules = {PurePosixPath("workers/tools/example_rules", rel.as_posix()): data
             for rel, data in _files(ROOT / "rules").items()}
    assert {p: held.get(p) for p in rules} == rules
    assert PurePosixPath("workers/tools/demo.py") in held and PurePosixPath("workers/tools/examples.py") in held
