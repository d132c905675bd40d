"""Bilingual (Chinese / English) user-facing errors and messages.

Every error a user can see carries a Chinese and an English text, and where it is
known the file, the feature and the problem. Nothing here is ever shown as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Message:
    """A bilingual message: ``code`` is a stable machine id (e.g. ``"crs.missing"``)."""

    code: str
    zh: str
    en: str
    path: str | None = None
    feature: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "zh") -> str:
        body = self.zh if lang.startswith("zh") else self.en
        where = []
        if self.path:
            where.append(("文件 " if lang.startswith("zh") else "file ") + str(self.path))
        if self.feature is not None:
            where.append(("要素 " if lang.startswith("zh") else "feature ") + str(self.feature))
        return (f"[{', '.join(where)}] " if where else "") + body

    def __str__(self) -> str:  # both languages, for logs and the CLI
        return f"{self.text('zh')} / {self.en}"

    def to_dict(self) -> dict[str, Any]:
        d = {"code": self.code, "zh": self.zh, "en": self.en}
        if self.path:
            d["path"] = str(self.path)
        if self.feature is not None:
            d["feature"] = self.feature
        if self.extra:
            d["extra"] = self.extra
        return d


class MultiplanError(Exception):
    """Base of every error meant for a user. ``exit_code`` is what the CLI returns."""

    exit_code = 1

    def __init__(self, code: str, zh: str, en: str, *, path: str | Path | None = None,
                 feature: Any = None, **extra: Any) -> None:
        self.message = Message(code, zh, en, str(path) if path is not None else None,
                               feature, dict(extra))
        super().__init__(str(self.message))

    @property
    def code(self) -> str:
        return self.message.code

    @property
    def zh(self) -> str:
        return self.message.zh

    @property
    def en(self) -> str:
        return self.message.en

    @property
    def path(self) -> str | None:
        return self.message.path

    @property
    def feature(self) -> Any:
        return self.message.feature

    def text(self, lang: str = "zh") -> str:
        return self.message.text(lang)

    def to_dict(self) -> dict[str, Any]:
        return self.message.to_dict()


class ImportRefused(MultiplanError):
    """A source file was refused; the project is unchanged."""

    exit_code = 3


class ProjectError(MultiplanError):
    """The project folder is missing, invalid, or of an unsupported schema."""

    exit_code = 4


class StandardsError(MultiplanError):
    """A standards table under resources/standards failed its schema check."""

    exit_code = 5
