"""config.toml → frozen, validated settings.

Every key is declared once in SCHEMA with its type and default; unknown
keys and wrong types are errors naming the key and the file, so a typo in
a config never silently falls back to a default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .policy import SelectorError, parse_selector

DEFAULT_CONFIG_NAME = "config.toml"


class ConfigError(Exception):
    """The config cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SiteConfig:
    title: str = "feeds"
    url: str = "http://127.0.0.1:8000"
    description: str = "Feeds published by feeds"
    language: str = "zh-CN"
    timezone: str = "Asia/Shanghai"
    default_category: str = "未分类"
    permalink: str = ""
    author: str = ""

    @property
    def base_url(self) -> str:
        """The site URL without a trailing slash: the prefix of every absolute URL."""
        return self.url.rstrip("/")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class SourceConfig:
    dir: Path = Path("examples/posts")
    pattern: str = "**/*.md"


@dataclass(frozen=True)
class OutputConfig:
    dir: Path = Path("public")
    gzip: bool = False


@dataclass(frozen=True)
class BuildConfig:
    cache_dir: Path = Path(".feeds-cache")
    workers: int = 0

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


@dataclass(frozen=True)
class FeedsConfig:
    formats: tuple[str, ...] = ("atom", "rss", "json")
    items: int = 50
    summary_chars: int = 140


@dataclass(frozen=True)
class SanitizeConfig:
    engine: str = "bleach"
    drop_selectors: tuple[str, ...] = (".appendQr_wrap",)
    iframe_hosts: tuple[str, ...] = ()
    placeholder_image_hosts: tuple[str, ...] = ("picsum.photos",)


@dataclass(frozen=True)
class CategoriesConfig:
    slugs: tuple[tuple[str, str], ...] = ()

    @property
    def slug_map(self) -> dict[str, str]:
        return dict(self.slugs)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_age: int = 300
    reload_seconds: float = 2.0
    # one granian worker per core: on 2 cores, under wrk at 10,000 posts,
    # two workers answered a cached feed with a p99 of 4.4-4.8 ms against
    # one worker's 5.5-6.9 ms (nginx, one worker: 3.9-5.0 ms)
    workers: int = 0

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


@dataclass(frozen=True)
class WebSubConfig:
    hub: str = ""


@dataclass(frozen=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    sanitize: SanitizeConfig = field(default_factory=SanitizeConfig)
    categories: CategoriesConfig = field(default_factory=CategoriesConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    websub: WebSubConfig = field(default_factory=WebSubConfig)
    path: Path | None = None


SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "source": SourceConfig,
    "output": OutputConfig,
    "build": BuildConfig,
    "feeds": FeedsConfig,
    "sanitize": SanitizeConfig,
    "server": ServerConfig,
    "websub": WebSubConfig,
}

KNOWN_FORMATS = ("atom", "rss", "json")
KNOWN_ENGINES = ("bleach", "bleach-html5lib", "nh3")


def _type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _coerce(where: str, expected: Any, value: Any, base: Path) -> Any:
    """Check one value against the type of its default; say what is wrong."""
    if isinstance(expected, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected a boolean, got {_type_name(value)}")
        return value
    if isinstance(expected, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_type_name(value)}")
        return value
    if isinstance(expected, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_type_name(value)}")
        return float(value)
    if isinstance(expected, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_type_name(value)}")
        return value
    if isinstance(expected, Path):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path string, got {_type_name(value)}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path
    if isinstance(expected, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected an array of strings")
        return tuple(value)
    raise AssertionError(f"no coercion for {where}")  # a SCHEMA bug, not user input


def _section(name: str, cls: type, table: Any, file: str, base: Path) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: error: [{name}]: expected a table, got {_type_name(table)}")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in table.items():
        where = f"{file}: error: [{name}] {key}"
        if key not in known:
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(known))})")
        values[key] = _coerce(where, getattr(defaults, key), value, base)
    for f in fields(cls):
        if f.name not in values and isinstance(getattr(defaults, f.name), Path):
            values[f.name] = base / getattr(defaults, f.name)
    return cls(**values)


def _validate(config: Config, file: str) -> None:
    site = config.site
    parts = urlsplit(site.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{file}: error: [site] url: expected an absolute http(s) URL, got {site.url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{file}: error: [site] url: must not have a query or fragment")
    try:
        ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{file}: error: [site] timezone: unknown time zone {site.timezone!r}") from None
    if not site.default_category.strip():
        raise ConfigError(f"{file}: error: [site] default_category: must not be empty")
    feeds = config.feeds
    unknown = [f for f in feeds.formats if f not in KNOWN_FORMATS]
    if unknown or not feeds.formats:
        raise ConfigError(
            f"{file}: error: [feeds] formats: expected some of {', '.join(KNOWN_FORMATS)}, got {list(feeds.formats)}"
        )
    if len(set(feeds.formats)) != len(feeds.formats):
        raise ConfigError(f"{file}: error: [feeds] formats: a format is listed twice")
    if feeds.items < 1:
        raise ConfigError(f"{file}: error: [feeds] items: must be at least 1")
    if feeds.summary_chars < 1:
        raise ConfigError(f"{file}: error: [feeds] summary_chars: must be at least 1")
    if config.sanitize.engine not in KNOWN_ENGINES:
        raise ConfigError(
            f"{file}: error: [sanitize] engine: expected one of {', '.join(KNOWN_ENGINES)}, got {config.sanitize.engine!r}"
        )
    for selector in config.sanitize.drop_selectors:
        try:
            parse_selector(selector)
        except SelectorError as exc:
            raise ConfigError(f"{file}: error: [sanitize] drop_selectors: {selector!r}: {exc}") from None
    if config.build.workers < 0:
        raise ConfigError(f"{file}: error: [build] workers: must be 0 (one per core) or more")
    server = config.server
    if not 0 <= server.port <= 65535:
        raise ConfigError(f"{file}: error: [server] port: must be 0..65535")
    if server.max_age < 0:
        raise ConfigError(f"{file}: error: [server] max_age: must not be negative")
    if server.reload_seconds < 0:
        raise ConfigError(f"{file}: error: [server] reload_seconds: must not be negative (0 = off)")
    if server.workers < 0:
        raise ConfigError(f"{file}: error: [server] workers: must be 0 (one per core) or more")
    hub = config.websub.hub
    if hub and urlsplit(hub).scheme not in ("http", "https"):
        raise ConfigError(f"{file}: error: [websub] hub: expected an http(s) URL or \"\"")
    from .slug import slugify, SlugError

    for name, slug in config.categories.slugs:
        try:
            slugify(slug)
        except SlugError as exc:
            raise ConfigError(f"{file}: error: [categories.slugs] {name!r}: {exc}") from None


def config_from_dict(data: dict, file: str = "<config>", base: Path | None = None) -> Config:
    """Build a Config from parsed TOML; `base` anchors relative paths."""
    base = base if base is not None else Path.cwd()
    values: dict[str, Any] = {}
    for key, table in data.items():
        if key == "categories":
            if not isinstance(table, dict):
                raise ConfigError(f"{file}: error: [categories]: expected a table")
            for sub in table:
                if sub != "slugs":
                    raise ConfigError(f"{file}: error: [categories] {sub}: unknown key (known: slugs)")
            slugs = table.get("slugs", {})
            if not isinstance(slugs, dict):
                raise ConfigError(f"{file}: error: [categories.slugs]: expected a table of name = \"slug\"")
            for name, slug in slugs.items():
                if not isinstance(slug, str):
                    raise ConfigError(
                        f"{file}: error: [categories.slugs] {name!r}: expected a string, got {_type_name(slug)}"
                    )
            values["categories"] = CategoriesConfig(slugs=tuple(sorted(slugs.items())))
        elif key in SECTIONS:
            values[key] = _section(key, SECTIONS[key], table, file, base)
        else:
            known = ", ".join(sorted([*SECTIONS, "categories"]))
            raise ConfigError(f"{file}: error: [{key}]: unknown section (known: {known})")
    for key, cls in SECTIONS.items():
        values.setdefault(key, _section(key, cls, {}, file, base))
    config = Config(**values, path=Path(file) if file != "<config>" else None)
    _validate(config, file)
    return config


def resolve_config_path(explicit: str | os.PathLike | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("FEEDS_CONFIG")
    return Path(env) if env else Path(DEFAULT_CONFIG_NAME)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Read and validate a config file (`--config`, FEEDS_CONFIG, or ./config.toml)."""
    path = resolve_config_path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: error: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: error: cannot read config: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: error: config is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: error: invalid TOML: {exc}") from None
    return config_from_dict(data, str(path), path.resolve().parent)
