"""Reading YAML written by people (station files, series plans) without trusting it.

:func:`load_yaml` has ``yaml.safe_load``'s semantics but refuses what a hostile
or broken file could do to the reader: alias expansion beyond a small budget
("billion laughs"), nesting deeper than a sane depth, duplicate keys (YAML
would silently keep the last), files larger than a sane size and text that is
not UTF-8. Every error is one line, ``FILE:LINE: problem``.

:func:`load_document` also returns where each key was written, so later
validation can say ``FILE:LINE: key.path: problem`` (:meth:`YamlDocument.where`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from labctl.errors import LabctlError

MAX_BYTES = 1_000_000
MAX_DEPTH = 50
#: Nodes that aliases may add to a document when expanded (a station file needs a handful).
MAX_ALIAS_NODES = 10_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class YamlDocument:
    """Loaded data plus the line of every mapping key and sequence item."""

    path: str
    data: Any
    _lines: dict[int, dict[Any, int]] = field(default_factory=dict, repr=False)

    def line_of(self, keys: Sequence[Any]) -> int | None:
        """Line (1-based) of the deepest existing key along ``keys``; None for the top level.

        ``keys`` is a key path into :attr:`data`: mapping keys and sequence indices.
        """
        line = None
        node = self.data
        for key in keys:
            lines = self._lines.get(id(node))
            if lines is None:
                break
            try:
                found = lines.get(key)
            except TypeError:  # an unhashable key cannot be in a mapping
                break
            if found is None:
                break
            line = found
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                break
        return line

    def where(self, keys: Sequence[Any] = ()) -> str:
        """``"FILE:LINE"`` for a key path (``"FILE"`` when no line is known)."""
        line = self.line_of(keys)
        return f"{self.path}:{line}" if line is not None else self.path


def load_yaml(path: str | Path, what: str = "YAML file", error: type[Exception] = LabctlError):
    """The data of a YAML file (``yaml.safe_load`` semantics), refusing hostile input.

    ``what`` names the file's kind in messages; ``error`` is the exception raised
    (one line: file, line where known, problem).
    """
    return load_document(path, what, error).data


def load_document(
    path: str | Path,
    what: str = "YAML file",
    error: type[Exception] = LabctlError,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    max_alias_nodes: int = MAX_ALIAS_NODES,
) -> YamlDocument:
    """Like :func:`load_yaml`, keeping the line of every key for later messages."""
    path = Path(path)
    raw = _read_bounded(path, what, error, max_bytes)
    text = _decode(raw, path, what, error)
    loader = None
    try:
        loader = _BoundedLoader(text, max_depth=max_depth, max_alias_nodes=max_alias_nodes)
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "malformed"
        if exc.problem and exc.context and not exc.context.startswith("while"):
            problem = f"{exc.context} {exc.problem}"  # "expected a single document … but found …"
        raise error(f"{where}: not valid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:  # libyaml counts bytes, PyYAML characters
        before = text.encode()[: exc.position] if _SafeLoader is not yaml.SafeLoader else text
        line = before[: exc.position].count("\n" if isinstance(before, str) else b"\n") + 1
        raise error(
            f"{path}:{line}: not valid YAML: unacceptable character #x{exc.character:04x}"
        ) from None
    except RecursionError:  # defence in depth: the depth limit should stop this first
        raise error(f"{path}: not valid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(str(path), data, loader.key_lines)


def _read_bounded(path: Path, what: str, error: type[Exception], max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise error(f"{path}: larger than {max_bytes:,} bytes: not a {what}")
    return raw


def _decode(raw: bytes, path: Path, what: str, error: type[Exception]) -> str:
    for bom, name in (
        (b"\xff\xfe\x00\x00", "UTF-32"),
        (b"\x00\x00\xfe\xff", "UTF-32"),
        (b"\xff\xfe", "UTF-16"),
        (b"\xfe\xff", "UTF-16"),
    ):
        if raw.startswith(bom):
            raise error(f"{path}: {name} text; save the {what} as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise error(
            f"{path}:{line}: NUL byte in the text (UTF-16 without a byte-order mark, "
            f"or not a text file); save the {what} as UTF-8"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the {what} as UTF-8"
        ) from None


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _SafeLoader(CParser, Composer, SafeConstructor, Resolver):
        """libyaml's parser (C speed) under PyYAML's composer, which the bounds below hook."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        check_node = Composer.check_node
        get_node = Composer.get_node
        get_single_node = Composer.get_single_node

else:  # pragma: no cover - PyYAML built without libyaml
    _SafeLoader = yaml.SafeLoader  # type: ignore[misc,assignment]


class _BoundedLoader(_SafeLoader):
    """SafeLoader that bounds depth and alias expansion, refuses duplicate keys
    and records the line of every key."""

    def __init__(self, text: str, *, max_depth: int, max_alias_nodes: int) -> None:
        super().__init__(text)
        self.max_depth = max_depth
        self.max_alias_nodes = max_alias_nodes
        self.key_lines: dict[int, dict[Any, int]] = {}
        self._depth = 0
        self._alias_nodes = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[int, int] = {}  # expanded size of composed, anchored nodes

    # --- composition: depth, aliases, duplicate keys ------------------------
    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            anchor = event.anchor
            if anchor in self._open_anchors:
                raise ComposerError(
                    None, None, f"alias *{anchor} refers to itself", event.start_mark
                )
            node = self.anchors.get(anchor)
            if node is not None:
                self._alias_nodes += self._expanded_size(node)
                if self._alias_nodes > self.max_alias_nodes:
                    raise ComposerError(
                        None,
                        None,
                        f"aliases expand to more than {self.max_alias_nodes:,} nodes "
                        "(an alias bomb?)",
                        event.start_mark,
                    )
            return super().compose_node(parent, index)
        if self._depth >= self.max_depth:
            raise ComposerError(
                None, None, f"nested deeper than {self.max_depth} levels", event.start_mark
            )
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(anchor)

    def _expanded_size(self, node: Node) -> int:
        """Nodes in ``node`` with every alias expanded (memoized; depth is bounded)."""
        key = id(node)
        size = self._sizes.get(key)
        if size is None:
            if isinstance(node, ScalarNode):
                size = 1
            elif isinstance(node, SequenceNode):
                size = 1 + sum(self._expanded_size(child) for child in node.value)
            else:
                size = 1 + sum(
                    self._expanded_size(k) + self._expanded_size(v) for k, v in node.value
                )
            self._sizes[key] = size
        return size

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            k = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if k in seen:
                raise ComposerError(
                    None,
                    None,
                    f"duplicate key {key_node.value!r} (first at line {seen[k]})",
                    key_node.start_mark,
                )
            seen[k] = line
        return node

    # --- construction: bounded errors, key lines -----------------------------
    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:  # e.g. a 5000-digit int, month 13
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read value: {str(exc)[:80]}", node.start_mark
            ) from None

    def _construct_map_with_lines(self, node: MappingNode):
        data: dict = {}
        yield data
        data.update(self.construct_mapping(node))
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:  # after merge flattening: explicit keys come last
            lines[self.construct_object(key_node)] = key_node.start_mark.line + 1
        self.key_lines[id(data)] = lines

    def _construct_seq_with_lines(self, node: SequenceNode):
        data: list = []
        yield data
        data.extend(self.construct_sequence(node))
        self.key_lines[id(data)] = {
            i: child.start_mark.line + 1 for i, child in enumerate(node.value)
        }


_BoundedLoader.add_constructor("tag:yaml.org,2002:map", _BoundedLoader._construct_map_with_lines)
_BoundedLoader.add_constructor("tag:yaml.org,2002:seq", _BoundedLoader._construct_seq_with_lines)
