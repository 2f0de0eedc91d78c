"""The destinations file: YAML in, a validated ``NotifierConfig`` out, or one line that
names the key that is wrong.

Each entry of ``destinations`` is read as the ``DestinationConfig`` subclass its ``type``
names (a pydantic discriminated union over ``notifier.destinations.CONFIG_TYPES``), and
every secret it references is resolved now, so a missing one stops the start-up instead
of failing the first delivery hours later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from notifier.destinations.base import DestinationConfig, SecretRef

ConfigTypes = Sequence[type[DestinationConfig]]

#: A destinations file is a few KiB; a bigger one is a mistake (and parsing it unbounded).
MAX_FILE_BYTES = 1024 * 1024
#: Bounds on the parsed document, aliases expanded: a YAML alias bomb ("billion laughs")
#: is a few hundred bytes that would expand to millions of nodes for the validator.
MAX_NODES = 100_000
MAX_DEPTH = 32
#: A value quoted back in an error line is cut to this.
SHOWN_CHARS = 60


class ConfigError(ValueError):
    """A bad destinations file; the message is one line naming the key path."""


class NotifierConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    destinations: tuple[DestinationConfig, ...] = ()

    def names(self) -> list[str]:
        return [d.name for d in self.destinations]

    def by_name(self, name: str) -> DestinationConfig:
        for destination in self.destinations:
            if destination.name == name:
                return destination
        raise KeyError(name)


def registered_types() -> ConfigTypes:
    from notifier.destinations import CONFIG_TYPES

    return CONFIG_TYPES


def _file_model(types: ConfigTypes) -> type[BaseModel]:
    """``{destinations: [<one of types, chosen by 'type'>]}``, built from the registry."""
    if len(types) == 1:
        entry: Any = types[0]
    else:
        entry = Annotated[Union[tuple(types)], Field(discriminator="type")]  # noqa: UP007
    return create_model(
        "DestinationsFile",
        __config__=ConfigDict(extra="forbid"),
        destinations=(list[entry], Field(default_factory=list)),
    )


def parse_config(data: object, types: ConfigTypes | None = None) -> NotifierConfig:
    """Validate an already-parsed file; raises ConfigError (one line)."""
    chosen = registered_types() if types is None else types
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("the file must be a mapping with a 'destinations' list")
    try:
        parsed = _file_model(chosen).model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, chosen)) from None
    destinations: list[DestinationConfig] = parsed.destinations  # type: ignore[attr-defined]
    seen: dict[str, int] = {}
    for i, destination in enumerate(destinations):
        if destination.name in seen:
            raise ConfigError(
                f"destinations[{i}].name: {destination.name!r} is already the name of "
                f"destinations[{seen[destination.name]}]"
            )
        seen[destination.name] = i
        _reveal_secrets(destination, f"destinations[{i}]")
    return NotifierConfig(destinations=tuple(destinations))


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load's loader, refusing a key given twice in one mapping (YAML says keys are
    unique; PyYAML would silently keep the last, e.g. a second ``destinations:``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_shown(key)}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path, types: ConfigTypes | None = None) -> NotifierConfig:
    """Read and validate the destinations file at ``path``; raises ConfigError (one line)."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"NOTIFIER_CONFIG: cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes: not a destinations file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: safe_load plus unique keys
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" line {mark.line + 1} column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    _check_size(data, path)
    return parse_config(data, types)


def _check_size(data: object, path: Path) -> None:
    """ConfigError if the document, aliases expanded, is deeper or larger than a
    destinations file can be; walked without recursion and stopped at the bound."""
    stack: list[tuple[object, int]] = [(data, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ConfigError(f"{path}: more than {MAX_NODES} values (aliases expanded)")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node)
        elif isinstance(node, list | tuple | set):
            stack.extend((v, depth + 1) for v in node)


def _reveal_secrets(destination: DestinationConfig, where: str) -> None:
    for name in type(destination).model_fields:
        value = getattr(destination, name)
        if isinstance(value, SecretRef):
            try:
                value.reveal()
            except ValueError as exc:
                raise ConfigError(f"{where}.{name}: {exc}") from None


def _first_error(exc: ValidationError, types: ConfigTypes) -> str:
    """The first error as ``destinations[1].url: <message> (got ...)``; more are counted."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    path = format_path(err["loc"], {_type_tag(t) for t in types})
    given = err.get("input")
    shown = ""
    if (
        not isinstance(given, dict | list)
        and err["type"] != "missing"
        and not _is_secret_path(err["loc"], types)
    ):
        shown = f" (got {_shown(given)})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    # pydantic quotes some inputs raw ("Input tag 'a<line break>b' ..."): one line still.
    message = " ".join(err["msg"].splitlines())
    return f"{path or 'file'}: {message}{shown}{more}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _is_secret_path(loc: tuple[int | str, ...], types: ConfigTypes) -> bool:
    # A value given where a secret reference belongs is most likely the secret itself
    # (a Slack hook URL written inline); a URL may carry user:password@.
    secret_keys = {n for t in types for n, f in t.model_fields.items() if _holds_secret(f)}
    return any(
        isinstance(p, str)
        and (p in secret_keys or any(w in p for w in ("secret", "token", "password", "url")))
        for p in loc
    )


def _holds_secret(field: Any) -> bool:
    annotation = field.annotation
    return annotation is SecretRef or SecretRef in getattr(annotation, "__args__", ())


def _type_tag(cls: type[DestinationConfig]) -> str:
    annotation = cls.model_fields["type"].annotation
    args = getattr(annotation, "__args__", ())
    return str(args[0]) if args else cls.__name__


def format_path(loc: tuple[int | str, ...], tags: set[str]) -> str:
    """pydantic's error location as a key path; the union's tag (``'webhook'``) is dropped,
    as are the model names pydantic adds for a single type."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in tags:
            continue  # the discriminated union's branch, not a key of the file
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:  # a key with spaces, dots or a line break: quoted, so the line stays one
            out += f"[{_shown(part)}]"
    return out


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
