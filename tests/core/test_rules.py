"""Rule files: schema errors as `file: rule: field: problem`, all at once, templates compiled at load."""

from __future__ import annotations

import pytest
import yaml

from workers.core.rules import check_unique_names, parse_rule_file
from workers.core.templates import environment
from workers.errors import ConfigError

ENV = environment("UTC", "US")


def parse(text: str, templates: dict[str, str] | None = None):  # noqa: ANN201
    def read(name: str) -> str:
        if templates is None or name not in templates:
            raise OSError(f"no such file: {name}")
        return templates[name]

    return parse_rule_file(yaml.safe_load(text), "r.yaml", ENV, read)


def problems(text: str, templates: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, templates)
    return [str(p) for p in info.value.problems]


GOOD = """
rules:
  - name: hello
    source: shop
    event: orders/*
    send: {channel: sms, to: "{{ payload.phone }}", body: "Hi"}
"""


def test_a_good_rule_compiles() -> None:
    [rule] = parse(GOOD)
    assert rule.name == "hello"
    assert rule.selects("shop", "orders/create") == (True, "")
    assert rule.selects("shop", "refunds/create")[0] is False
    assert rule.selects("other", "orders/create")[0] is False


def test_unknown_keys_are_errors() -> None:
    found = problems("rules:\n  - {name: a, source: s, event: e, send: {channel: sms, to: x, body: b}, scedule: {}}\n")
    assert found == ["r.yaml: a: scedule: unknown key (check its spelling)"]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        """
rules:
  - name: a
    source: s
    event: e
    send: {channel: fax, to: x, body: b}
  - name: b
    source: s
    event: e
    send: {channel: sms, to: x, body: "Hi {{ payload.name "}
  - name: c
    source: s
    event: e
    when: {payload.total: {bigger: 3}}
    cancel: {key: k}
  - name: d
    source: s
    event: e
    send: {channel: mms, to: x, body: b, media_file: "http://x/y.jpg", subject: "a subject longer than twenty"}
"""
    )
    assert any(p.startswith("r.yaml: a: send.channel: Must be one of") for p in found)
    assert any(p.startswith("r.yaml: b: send.body: template syntax error") for p in found)
    assert any(p.startswith("r.yaml: c: when: when.payload.total: unknown operator 'bigger'") for p in found)
    assert "r.yaml: d: send.subject: at most 20 characters" in found
    assert len(found) == 4


def test_template_syntax_error_carries_the_line_when_loaded_from_a_file(tmp_path) -> None:  # noqa: ANN001
    from workers.wiring.rulesdir import load_config

    (tmp_path / "sources.yaml").write_text("sources: {s: {verify: {scheme: none}}}\n")
    (tmp_path / "r.yaml").write_text("rules:\n  - name: a\n    source: s\n    event: e\n"
                                     "    send: {channel: sms, to: x, body: '{{ oops'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, {})
    assert str(info.value.problems[0]).startswith("r.yaml:5: a: send.body: template syntax error")


def test_template_file_is_read_and_compiled() -> None:
    [rule] = parse(GOOD.replace('body: "Hi"', "template: templates/x.j2"), {"templates/x.j2": "Hello {{ payload.n }}"})
    assert rule.send is not None and rule.send.body is not None
    assert rule.send.body.render(payload={"n": "Ann"}) == "Hello Ann"


def test_missing_template_file_is_an_error() -> None:
    found = problems(GOOD.replace('body: "Hi"', "template: templates/none.j2"))
    assert found[0].startswith("r.yaml: hello: send.template: cannot read template")


@pytest.mark.parametrize(
    ("send", "message"),
    [
        ("{channel: sms, body: b}", "send.to: give exactly one of to or list_id"),
        ("{channel: sms, to: x}", "send.body: give exactly one of body or template"),
        ("{channel: mms, to: x, body: b, subject: s}", "send.media_file: mms needs media_file"),
        ("{channel: sms, to: x, body: b, voice: male}", "send.voice: only voice messages have voice"),
    ],
)
def test_send_shape_errors(send: str, message: str) -> None:
    found = problems(f"rules:\n  - {{name: a, source: s, event: e, send: {send}}}\n")
    assert found == [f"r.yaml: a: {message}"]


def test_replace_needs_a_key_and_cancel_excludes_send() -> None:
    assert problems("rules:\n  - {name: a, source: s, event: e, replace: true, send: {channel: sms, to: x, body: b}}\n"
                    ) == ["r.yaml: a: replace: replace needs a key"]
    no_action = problems("rules:\n  - {name: a, source: s, event: e}\n")
    assert no_action == ["r.yaml: a: send: give exactly one of send, cancel, contact or contact_remove"]
    unkeyed = problems("rules:\n  - {name: a, source: s, event: e, order: '{{ payload.t }}',"
                       " send: {channel: sms, to: x, body: b}}\n")
    assert unkeyed == ["r.yaml: a: order: order needs a key or a cancel"]


def test_duplicate_names_across_files_are_errors() -> None:
    rules = parse(GOOD) + parse(GOOD)
    assert [str(p) for p in check_unique_names(rules)] == ["r.yaml: hello: name: duplicate rule name (also in r.yaml)"]
