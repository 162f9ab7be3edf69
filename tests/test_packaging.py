"""The distribution: its import names are ours alone, and it is marked private."""

from importlib import metadata


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
