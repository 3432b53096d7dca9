"""Rendering: every template file on disk, privacy rules, escaping, fallback, SMS length."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from jinja2 import Environment, meta

from shared.notify.render import (
    CONTEXT_KEYS,
    PORTAL_URL_MAX_LENGTH,
    TEMPLATE_FILES,
    TEMPLATES_DIR,
    Rendered,
    SmsTooLong,
    TemplateContextError,
    TemplateSet,
    UnknownTemplate,
    check_templates,
    kinds,
    render,
    resolve_language,
)
from shared.notify.sms import MAX_SEGMENTS, sms_segments

# Distinctive values: if one shows up where it must not, the substring test finds it.
GIVEN_NAME = "Xiomarita"
FACILITY = "Quillfeather Clinic"
PORTAL = "https://portal.example.org/lab"
CONTEXT = {"given_name": GIVEN_NAME, "facility_name": FACILITY, "portal_url": PORTAL}
LONGEST_URL = "https://portal.example.org/" + "p" * (PORTAL_URL_MAX_LENGTH - len("https://portal.example.org/"))

# Everything on disk, so a new kind, language or file is covered without touching this test.
FILES = sorted(
    p.relative_to(TEMPLATES_DIR).as_posix()
    for p in TEMPLATES_DIR.rglob("*")
    if p.is_file() and not p.relative_to(TEMPLATES_DIR).parts[0].startswith(("_", "."))
)
LANG_DIRS = sorted({f.rsplit("/", 1)[0] for f in FILES})
KINDS = sorted({f.split("/", 1)[0] for f in FILES})


def _render_file_on_disk(relpath: str, context: dict[str, str] = CONTEXT) -> tuple[Rendered, str]:
    """Render the channel ``relpath`` belongs to; return the rendering and the part from that file."""
    kind, lang, name = relpath.split("/")
    if name == "sms.txt":
        r = render(kind, "sms", lang, context)
        return r, r.text
    r = render(kind, "email", lang, context)
    part = {"email_subject.txt": r.subject, "email_body.txt": r.text, "email_body.html": r.html}[name]
    assert part is not None
    return r, part


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.html_lang: str | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)
        if tag == "html":
            self.html_lang = dict(attrs).get("lang")


# -- the catalogue --------------------------------------------------------------------------------


def test_the_expected_kinds_and_languages_exist() -> None:
    assert {"results_ready", "welcome", "reminder"} <= set(KINDS)
    assert set(kinds()) == set(KINDS)
    for kind in KINDS:
        assert {f"{kind}/en", f"{kind}/es"} <= set(LANG_DIRS)


@pytest.mark.parametrize("lang_dir", LANG_DIRS)
def test_every_language_has_exactly_the_four_files(lang_dir: str) -> None:
    names = {p.name for p in (TEMPLATES_DIR / lang_dir).iterdir()}
    assert names == TEMPLATE_FILES
    lang = lang_dir.split("/")[1]
    assert lang == lang.lower(), "language directories are lower-case BCP-47 tags (lookup lower-cases)"


# -- every file renders, and keeps the privacy rules -----------------------------------------------


@pytest.mark.parametrize("relpath", FILES)
def test_template_renders(relpath: str) -> None:
    kind, lang, name = relpath.split("/")
    rendered, part = _render_file_on_disk(relpath)
    assert rendered.language == lang
    assert rendered.kind == kind
    assert part.strip()
    if name != "email_subject.txt":
        assert PORTAL in part
    if name == "email_body.html":
        parser = _Links()
        parser.feed(part)
        assert PORTAL in parser.hrefs
        assert parser.html_lang == lang
        assert "{{" not in part and "{%" not in part


@pytest.mark.parametrize("relpath", FILES)
def test_without_a_portal_every_template_leaves_the_link_out(relpath: str) -> None:
    """PORTAL_URL unset: no link, no dangling "sign in at" (the same file rendered with one links it)."""
    _, with_link = _render_file_on_disk(relpath)
    _, part = _render_file_on_disk(relpath, {**CONTEXT, "portal_url": ""})
    assert part.strip()
    assert "http" not in part and "{{" not in part and "{%" not in part
    if relpath.endswith("email_body.html"):
        parser = _Links()
        parser.feed(part)
        assert parser.hrefs == [] and "<a" not in part
    if not relpath.endswith("email_subject.txt"):
        assert part != with_link and PORTAL in with_link
    stripped = part.rstrip()
    assert not stripped.endswith((":", " at", " en", "portal:")), f"a sentence left pointing nowhere: {stripped[-40:]!r}"
    assert "\n\n\n" not in part, "no gap where the link was"
    if relpath.endswith("sms.txt"):
        assert sms_segments(part) <= MAX_SEGMENTS


def test_the_default_settings_configure_no_portal(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.notify import runtime  # noqa: PLC0415
    from shared.settings import Settings  # noqa: PLC0415

    monkeypatch.delenv("PORTAL_URL", raising=False)
    monkeypatch.setattr(runtime, "get_settings", Settings)
    assert Settings().portal_url is None
    assert runtime.sms_context() == {"portal_url": ""}
    assert runtime.email_context("Ana")["portal_url"] == ""


@pytest.mark.parametrize("relpath", [f for f in FILES if f.endswith(("email_subject.txt", "sms.txt"))])
def test_subjects_and_sms_carry_no_context_value_but_the_portal_url(relpath: str) -> None:
    _, part = _render_file_on_disk(relpath)
    assert GIVEN_NAME not in part
    assert FACILITY not in part
    assert "\n" not in part


@pytest.mark.parametrize("relpath", [f for f in FILES if f.endswith("email_body.txt")])
def test_text_body_greets_by_given_name(relpath: str) -> None:
    _, part = _render_file_on_disk(relpath)
    first_line = part.splitlines()[0]
    assert GIVEN_NAME in first_line


@pytest.mark.parametrize("relpath", FILES)
def test_templates_use_only_the_allowed_variables(relpath: str) -> None:
    source = (TEMPLATES_DIR / relpath).read_text(encoding="utf-8")
    used = meta.find_undeclared_variables(Environment().parse(source))
    if relpath.endswith(("email_subject.txt", "sms.txt")):
        assert used <= {"portal_url"}
    else:
        assert used <= CONTEXT_KEYS


@pytest.mark.parametrize("relpath", [f for f in FILES if f.endswith("sms.txt")])
def test_sms_fits_two_segments_with_the_longest_portal_url(relpath: str) -> None:
    _, text = _render_file_on_disk(relpath, {**CONTEXT, "portal_url": LONGEST_URL})
    assert LONGEST_URL in text
    assert 1 <= sms_segments(text) <= MAX_SEGMENTS == 2


@pytest.mark.parametrize("relpath", [f for f in FILES if f.split("/")[1] == "es"])
def test_spanish_differs_from_english(relpath: str) -> None:
    _, spanish = _render_file_on_disk(relpath)
    _, english = _render_file_on_disk(relpath.replace("/es/", "/en/"))
    assert spanish != english


def test_check_templates_passes_for_the_shipped_templates() -> None:
    check_templates()


# -- StrictUndefined, escaping, context rules -----------------------------------------------------


@pytest.mark.parametrize("missing", ["given_name", "facility_name", "portal_url"])
def test_missing_variable_raises(missing: str) -> None:
    context = {k: v for k, v in CONTEXT.items() if k != missing}
    with pytest.raises(TemplateContextError, match=missing):
        render("results_ready", "email", "en", context)


def test_sms_needs_only_the_portal_url() -> None:
    assert PORTAL in render("reminder", "sms", "es", {"portal_url": PORTAL}).text
    with pytest.raises(TemplateContextError, match="portal_url"):
        render("reminder", "sms", "es", {"given_name": GIVEN_NAME})


def test_empty_given_name_gives_a_greeting_without_a_name() -> None:
    en = render("welcome", "email", "en", {**CONTEXT, "given_name": ""})
    es = render("welcome", "email", "es", {**CONTEXT, "given_name": ""})
    assert en.text.startswith("Hello,\n")
    assert es.text.startswith("Hola:\n")
    assert "<p>Hello,</p>" in (en.html or "")


def test_html_escapes_the_given_name_and_text_keeps_it_literal() -> None:
    hostile = '<script>alert("x")</script> & Ana'
    r = render("results_ready", "email", "en", {**CONTEXT, "given_name": hostile, "facility_name": "A&B <Lab>"})
    assert r.html is not None
    assert "<script>" not in r.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Ana" in r.html
    assert "A&amp;B &lt;Lab&gt;" in r.html
    assert hostile in r.text
    assert "A&B <Lab>" in r.text
    assert "&lt;" not in r.text


def test_unexpected_context_keys_are_refused_without_echoing_values() -> None:
    with pytest.raises(TemplateContextError) as info:
        render("results_ready", "email", "en", {**CONTEXT, "result_value": "7.9 mmol/L"})
    assert "result_value" in str(info.value)
    assert "mmol" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "portal.example.org/lab",
        "https://",
        "https://exa mple.org",
        "ftp://example.org",
        "https://x.org/" + "a" * PORTAL_URL_MAX_LENGTH,
    ],
)
def test_bad_portal_url_is_refused(url: str) -> None:
    with pytest.raises(TemplateContextError, match="portal_url"):
        render("welcome", "email", "en", {**CONTEXT, "portal_url": url})


def test_non_string_values_are_refused() -> None:
    with pytest.raises(TemplateContextError, match="given_name"):
        render("welcome", "email", "en", {**CONTEXT, "given_name": 42})  # type: ignore[dict-item]


def test_unknown_kind_and_channel() -> None:
    with pytest.raises(UnknownTemplate) as info:
        render("discharge_summary", "email", "en", CONTEXT)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownTemplate):
        render("welcome", "fax", "en", CONTEXT)  # type: ignore[arg-type]


def test_rendered_is_frozen() -> None:
    r = render("welcome", "sms", "en", {"portal_url": PORTAL})
    with pytest.raises(AttributeError):
        r.text = "changed"  # type: ignore[misc]
    assert r.subject is None and r.html is None


# -- language fallback ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("ES-419", "es"),
        ("es_AR", "es"),
        (" es ", "es"),
        ("en", "en"),
        ("EN-us", "en"),
        ("fr", "en"),
        ("fr-CA", "en"),
        ("zh-Hant-TW", "en"),
        ("", "en"),
        (None, "en"),
        ("../es", "en"),
        ("es/../../etc", "en"),
    ],
)
def test_language_fallback(preferred: str | None, expected: str) -> None:
    assert resolve_language("results_ready", preferred) == expected
    assert render("results_ready", "sms", preferred, {"portal_url": PORTAL}).language == expected


def test_region_specific_directory_wins_over_primary_subtag(tmp_path: Path) -> None:
    for lang, word in [("en", "Hi"), ("es", "Hola"), ("es-mx", "Qué onda")]:
        d = tmp_path / "ping" / lang
        d.mkdir(parents=True)
        (d / "sms.txt").write_text(word + " {{ portal_url }}\n", encoding="utf-8")
    ts = TemplateSet(tmp_path)
    assert ts.render("ping", "sms", "es-MX", {"portal_url": PORTAL}).language == "es-mx"
    assert ts.render("ping", "sms", "es-AR", {"portal_url": PORTAL}).language == "es"


# -- the renderer refuses SMS templates over two segments -------------------------------------------


def _sms_template_set(tmp_path: Path, text: str) -> TemplateSet:
    d = tmp_path / "long" / "en"
    d.mkdir(parents=True)
    (d / "sms.txt").write_text(text, encoding="utf-8")
    return TemplateSet(tmp_path)


def test_sms_template_over_two_segments_raises(tmp_path: Path) -> None:
    ts = _sms_template_set(tmp_path, "word " * 70 + "{{ portal_url }}\n")
    with pytest.raises(SmsTooLong):
        ts.render("long", "sms", "en", {"portal_url": PORTAL})


def test_sms_template_that_only_overflows_with_a_long_url_raises_even_with_a_short_one(tmp_path: Path) -> None:
    # 250 GSM characters + a short URL fit in two segments (306); with a 100-character URL they do not.
    ts = _sms_template_set(tmp_path, "a" * 250 + " {{ portal_url }}\n")
    assert sms_segments("a" * 250 + " " + PORTAL) == 2
    with pytest.raises(SmsTooLong, match=str(PORTAL_URL_MAX_LENGTH)):
        ts.render("long", "sms", "en", {"portal_url": PORTAL})


def test_one_non_gsm_character_makes_a_template_too_long(tmp_path: Path) -> None:
    # Fits as GSM-7 (160 + URL ≤ 306) but "á" switches to UCS-2: 67 units per part.
    ts = _sms_template_set(tmp_path, "Sus resultados están listos. " + "x" * 60 + " {{ portal_url }}\n")
    with pytest.raises(SmsTooLong):
        ts.render("long", "sms", "en", {"portal_url": PORTAL})


def test_the_render_module_is_not_shadowed_by_the_function() -> None:
    import shared.notify.render as module

    assert module.TEMPLATES_DIR == TEMPLATES_DIR
    assert module.render is render
