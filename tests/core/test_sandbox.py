"""Template sandbox escapes: every known way out of Jinja's sandbox either renders nothing revealing or fails the
message with Hookline's RenderError; never a raw Jinja error, never Python's internals in an SMS, never code run."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.core.templates import compile_template, environment, render
from workers.errors import RenderError

ENV = environment("UTC", "AU")
# What a dump of Python's internals looks like in text; none of it may reach a rendered message.
REVEALING = ("<class", "function", "module", "method", "__builtins__", "__globals__", " at 0x", "os.", "subprocess",
             "Popen", "_io.", "<TemplateReference")

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[-1].__subclasses__() }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ lipsum.__globals__.__builtins__ }}",
    "{{ range.__globals__ }}",
    "{{ dict.__init__ }}",
    "{{ '%s' % ''.__class__ }}",
    "{{ '%s' % payload.__class__ }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '{0.__class__.__mro__}'.format(payload) }}",
    "{{ '{a.__class__}'.format_map({'a': 1}) }}",
    "{{ '{0.__globals__}'.format(lipsum) }}",
    "{{ payload.__class__ }}",
    "{{ payload.__class__.__name__ }}",
    "{{ payload.get.__self__ }}",
    "{{ payload.__init__ }}",
    "{{ payload['__class__'] }}",
    "{{ payload|attr('__class__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ payload|selectattr('__class__')|list }}",
    "{{ payload|map(attribute='__class__')|list }}",
    "{{ __globals__ }}",
    "{{ __builtins__ }}",
    "{{ os }}",
    "{{ os.system('id') }}",
    "{{ self.__init__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request }}",
    "{{ request.application.__globals__ }}",
    "{{ event.__class__ }}",
    "{% set x = cycler.__init__ %}{{ x }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{{ lipsum.__call__ }}",
    "{{ (1).__class__ }}",
    "{{ 'x'.__add__ }}",
    "{{ payload.update({'a': 2}) }}",
    # Callables and classes shown as they are (`{{ payload.items }}` for `{{ payload.items() }}`): their repr
    # would put Python's names and memory addresses into an SMS.
    "{{ cycler }}",
    "{{ joiner }}",
    "{{ namespace }}",
    "{{ lipsum }}",
    "{{ range }}",
    "{{ dict }}",
    "{{ payload.get }}",
    "{{ payload.items }}",
    "{{ ''.format }}",
    "{{ ''.join }}",
    "{{ self }}",
]


def _render(source: str, **context: object) -> str:
    return render(compile_template(ENV, source), context, "body")


@pytest.mark.parametrize("source", ESCAPES)
def test_an_escape_renders_nothing_revealing_or_fails_with_a_render_error(source: str) -> None:
    payload = {"a": 1, "name": "Ann", "phone": "+61411111111"}
    try:
        text = _render(source, payload=payload, event={"payload": payload}, recipient="+61411111111")
    except RenderError as exc:
        assert str(exc).startswith("body: ")
    else:
        assert not any(bad in text for bad in REVEALING), text
    assert payload == {"a": 1, "name": "Ann", "phone": "+61411111111"}  # and the event is untouched


def test_no_escape_runs_code(tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    attempts = [
        f"{{{{ cycler.__init__.__globals__.os.system('touch {canary}') }}}}",
        f"{{{{ lipsum.__globals__['os'].popen('touch {canary}').read() }}}}",
        f"{{{{ joiner.__init__.__globals__.os.system('touch {canary}') }}}}",
        "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__['__builtins__']['open']"
        f"('{canary}', 'w') }}}}",
        f"{{{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch {canary}') }}}}",
        f"{{{{ namespace.__init__.__globals__.os.system('touch {canary}') }}}}",
    ]
    for source in attempts:
        with pytest.raises(RenderError):
            _render(source, payload={})
    assert not canary.exists()


def test_showing_a_callable_fails_the_message_and_does_not_hide_a_missing_field() -> None:
    with pytest.raises(RenderError, match="cannot be shown"):
        _render("Order {{ payload.items }}", payload={"items": []})
    with pytest.raises(RenderError, match=r"missing field \(first_name is missing\)"):
        _render("Hi {{ payload.first_name }}", payload={})
    # Calling them is fine: only the objects themselves are refused.
    assert _render("{{ payload.get('a') }} {{ payload.items()|list|length }} {{ range(3)|list }}",
                   payload={"a": 1}) == "1 1 [0, 1, 2]"
    assert _render("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}", payload={}) == "ab"
    assert _render("{% set ns = namespace(n=2) %}{{ ns.n }}", payload={}) == "2"
