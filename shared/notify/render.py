"""Notification rendering: template files → subject / text / HTML, or an SMS text.

Templates live under ``templates/<kind>/<lang>/`` as ``email_subject.txt``, ``email_body.txt``,
``email_body.html`` and ``sms.txt``. They are rendered by one sandboxed Jinja2 environment per
process (built on first use: importing this module does not import Jinja2), with
``StrictUndefined`` (a missing variable is an error, never an empty string) and autoescaping on for
``.html`` only.

Privacy rules the templates follow and the tests enforce: the only variables are ``given_name``
(e-mail body greeting only), ``portal_url`` and ``facility_name`` (e-mail body only); subjects and
SMS carry no context value except ``portal_url``; no template ever shows results, test names,
diagnoses or identifiers (the context cannot even carry them: unknown keys are refused).

``portal_url`` is always in the context; ``""`` means no portal is configured and every template
then leaves the link (and the sentence around it) out: a message never points at a page that is
not there.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from shared.notify.sms import MAX_SEGMENTS, sms_segments

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

Channel = Literal["email", "sms"]

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
DEFAULT_LANGUAGE: Final = "en"
CONTEXT_KEYS: Final = frozenset({"given_name", "portal_url", "facility_name"})

EMAIL_FILES: Final = ("email_subject.txt", "email_body.txt", "email_body.html")
SMS_FILE: Final = "sms.txt"
TEMPLATE_FILES: Final = frozenset((*EMAIL_FILES, SMS_FILE))

PORTAL_URL_MAX_LENGTH: Final = 100
"""Longest portal URL every SMS template must still fit (≤ MAX_SEGMENTS) with.

Checked per template against a worst-case URL of this length, so an over-long translation fails on
its first render everywhere, not only where the configured URL happens to be long. A configured
``portal_url`` longer than this is refused."""
LONGEST_PORTAL_URL: Final = "https://" + "x" * (PORTAL_URL_MAX_LENGTH - len("https://"))


class TemplateError(ValueError):
    """A notification could not be rendered: a bug or a configuration error, not a patient's fault."""


class UnknownTemplate(TemplateError):
    """No templates for this kind (or channel)."""


class TemplateContextError(TemplateError):
    """The context is missing a variable a template needs, has an unexpected one, or a bad value."""


class SmsTooLong(TemplateError):
    """An SMS template renders to more than MAX_SEGMENTS segments."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered notification. ``language`` is the language actually used (after fallback)."""

    subject: str | None
    text: str
    html: str | None
    language: str
    kind: str | None = None  # template kind, for logs (not PHI)


class TemplateSet:
    """The templates of one directory and the sandboxed environment that renders them.

    The process uses one (``render`` and friends below); tests build their own over a temporary
    directory. Thread-safe: the environment is built once, under a lock, on first use.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._env: SandboxedEnvironment | None = None
        self._catalogue: dict[str, frozenset[str]] | None = None
        self._sms_checked: set[tuple[str, str]] = set()

    # -- what exists ---------------------------------------------------------------------------
    def catalogue(self) -> dict[str, frozenset[str]]:
        """kind → languages present on disk (read once)."""
        if self._catalogue is None:
            found: dict[str, frozenset[str]] = {}
            if self.directory.is_dir():
                for kind in self.directory.iterdir():
                    if kind.is_dir() and not kind.name.startswith((".", "_")):  # _layouts: shared parts
                        found[kind.name] = frozenset(lang.name for lang in kind.iterdir() if lang.is_dir())
            self._catalogue = found
        return self._catalogue

    def kinds(self) -> frozenset[str]:
        return frozenset(self.catalogue())

    def languages(self, kind: str) -> frozenset[str]:
        try:
            return self.catalogue()[kind]
        except KeyError:
            raise UnknownTemplate(f"no templates for notification kind {kind!r}") from None

    def resolve_language(self, kind: str, preferred: str | None) -> str:
        """BCP-47 lookup (RFC 4647): ``es-MX`` → ``es-mx`` if present, else ``es``; else ``en``.

        Case-insensitive, ``_`` accepted for ``-``. The tag is only compared with the directory
        names found on disk, never used to build a path.
        """
        available = self.languages(kind)
        tag = (preferred or "").strip().replace("_", "-").lower()
        while tag:
            if tag in available:
                return tag
            tag = tag.rpartition("-")[0]
        return DEFAULT_LANGUAGE

    # -- rendering -----------------------------------------------------------------------------
    def environment(self) -> SandboxedEnvironment:
        if self._env is None:
            with self._lock:
                if self._env is None:
                    from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
                    from jinja2.sandbox import SandboxedEnvironment

                    self._env = SandboxedEnvironment(
                        loader=FileSystemLoader(self.directory),
                        undefined=StrictUndefined,
                        autoescape=select_autoescape(
                            enabled_extensions=("html", "htm", "xml"),
                            disabled_extensions=("txt",),
                            default_for_string=True,
                            default=True,
                        ),
                        trim_blocks=True,
                        lstrip_blocks=True,
                        auto_reload=False,
                    )
        return self._env

    def _render_file(self, name: str, context: Mapping[str, str]) -> str:
        from jinja2 import TemplateNotFound, UndefinedError

        try:
            return self.environment().get_template(name).render(context)
        except UndefinedError as exc:
            # Jinja's message names the variable only ("'given_name' is undefined").
            raise TemplateContextError(f"{name}: {exc.message}") from None
        except TemplateNotFound:
            raise UnknownTemplate(f"template file {name} is missing") from None

    def _check_sms_worst_case(self, kind: str, language: str) -> None:
        """Raise SmsTooLong if the SMS template overflows with the longest accepted portal URL."""
        if (kind, language) in self._sms_checked:
            return
        name = f"{kind}/{language}/{SMS_FILE}"
        text = self._render_file(name, {"portal_url": LONGEST_PORTAL_URL}).strip()
        segments = sms_segments(text)
        if segments > MAX_SEGMENTS:
            raise SmsTooLong(
                f"{name} needs {segments} SMS segments with a {PORTAL_URL_MAX_LENGTH}-character "
                f"portal URL (limit {MAX_SEGMENTS})"
            )
        self._sms_checked.add((kind, language))

    def render(self, kind: str, channel: Channel, language: str | None, context: Mapping[str, str]) -> Rendered:
        """See the module-level ``render``."""
        if channel not in ("email", "sms"):
            raise UnknownTemplate(f"unknown channel {channel!r}")
        lang = self.resolve_language(kind, language)
        _check_context(context)
        base = f"{kind}/{lang}/"

        if channel == "sms":
            self._check_sms_worst_case(kind, lang)
            text = self._render_file(base + SMS_FILE, context).strip()
            segments = sms_segments(text)
            if segments > MAX_SEGMENTS:
                raise SmsTooLong(f"{base}{SMS_FILE} renders to {segments} SMS segments (limit {MAX_SEGMENTS})")
            return Rendered(subject=None, text=text, html=None, language=lang, kind=kind)

        subject = self._render_file(base + "email_subject.txt", context).strip()
        if not subject or "\n" in subject or "\r" in subject:
            raise TemplateError(f"{base}email_subject.txt must render to exactly one non-empty line")
        text = self._render_file(base + "email_body.txt", context).strip() + "\n"
        html = self._render_file(base + "email_body.html", context)
        return Rendered(subject=subject, text=text, html=html, language=lang, kind=kind)

    def check(self) -> None:
        """Render every template with a worst-case context, with and without a portal; raise on the first broken one."""
        for portal_url in (LONGEST_PORTAL_URL, ""):
            context = {"given_name": "Maximiliana", "facility_name": "Facility", "portal_url": portal_url}
            for kind in sorted(self.kinds()):
                for lang in sorted(self.languages(kind)):
                    self.render(kind, "email", lang, context)
                    self.render(kind, "sms", lang, context)


def _check_context(context: Mapping[str, str]) -> None:
    unexpected = set(context) - CONTEXT_KEYS
    if unexpected:
        # Key names only: values may be patient data.
        raise TemplateContextError(f"unexpected context variable(s): {', '.join(sorted(unexpected))}")
    for key, value in context.items():
        if not isinstance(value, str):
            raise TemplateContextError(f"context variable {key} must be a string")
    url = context.get("portal_url")
    if url:  # "" = no portal configured
        parts = urlsplit(url)
        if (
            parts.scheme not in ("https", "http")
            or not parts.netloc
            or any(ch.isspace() for ch in url)
            or len(url) > PORTAL_URL_MAX_LENGTH
        ):
            raise TemplateContextError(
                f"portal_url must be an absolute http(s) URL of at most {PORTAL_URL_MAX_LENGTH} characters"
            )


_default_lock = threading.Lock()
_default: TemplateSet | None = None


def templates() -> TemplateSet:
    """The process-wide template set over TEMPLATES_DIR (built on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = TemplateSet(TEMPLATES_DIR)
    return _default


def kinds() -> frozenset[str]:
    """The notification kinds that have templates."""
    return templates().kinds()


def languages(kind: str) -> frozenset[str]:
    """Languages available for ``kind``; raises UnknownTemplate for an unknown kind."""
    return templates().languages(kind)


def resolve_language(kind: str, preferred: str | None) -> str:
    """The language ``render`` would use for ``kind`` and a patient's preferred language tag."""
    return templates().resolve_language(kind, preferred)


def render(kind: str, channel: Channel, language: str | None, context: Mapping[str, str]) -> Rendered:
    """Render notification ``kind`` for ``channel`` in the patient's ``language`` (with fallback).

    ``context`` may hold only ``given_name`` (pass ``""`` when unknown: the greeting then has no
    name), ``portal_url`` (``""`` when no portal is configured: no link) and ``facility_name``;
    e-mail needs all three, SMS only ``portal_url``.
    Raises UnknownTemplate, TemplateContextError or SmsTooLong (all TemplateError, a ValueError):
    each is a bug or a configuration error, never the patient's.
    """
    return templates().render(kind, channel, language, context)


def check_templates() -> None:
    """Render every template with a worst-case context; raises on the first broken one.

    Cheap enough for a start-up or CI check; the unit tests do the same file by file.
    """
    templates().check()
