"""The language server: `losslint server` (pygls 2, JSON-RPC on stdio).

It calls the same core API as the CLI (`api.lint_source` with the nearest config file's settings) and maps the
plain results to LSP:

- diagnostics on didOpen and didSave, on didChange after a short pause (a newer change cancels the pending run),
  cleared on didClose;
- code actions: the rule's fix ("(unconfirmed)" unless TensorFlow confirmed it), "Disable LLxxx for this line"
  (adds to or extends a `# losslint: ignore[...]` comment) and "Fix all safe losslint issues"
  (`source.fixAll.losslint`: confirmed safe fixes only, as `losslint fix`);
- fix confirmation: after a document is opened or saved, its fixes are confirmed in the background exactly as
  `losslint fix` does (TensorFlow, PyTorch or JAX in a child process, one at a time, cached) and the diagnostics are
  published again with `data.fix.confirmed`; `losslint server --no-confirm` turns it off;
- hover on a finding: the rule's page;
- configuration reload when a pyproject.toml or losslint.toml changes (workspace/didChangeWatchedFiles, registered
  dynamically when the client allows it).

Positions: the model counts columns in code points. pygls negotiates the client's position encoding (UTF-16 unless
the client offers another) and its position codec converts every range we send; code-point columns never reach a
client that did not ask for UTF-32.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
import tokenize
from dataclasses import dataclass, field, replace
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace.position_codec import PositionCodec

from losslint import __version__, api
from losslint.config import ConfigError, Settings, _config_in
from losslint.model import Diagnostic, Edit, FileResult, Fix, Position, Range
from losslint.suppressions import _IGNORE_RE

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.3
CONFIG_FILES = ("pyproject.toml", "losslint.toml")
FIX_ALL_KIND = "source.fixAll.losslint"
WATCHER_ID = "losslint-config-watcher"

_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


# --- pure mapping from the model to LSP (unit-tested without a client) -------------------------------------------

def split_lines(source: str) -> list[str]:
    """Lines with their endings, split where LSP and libcst split them (\\r\\n, \\r, \\n; not str.splitlines's
    form feeds and Unicode separators)."""
    return _LINE_RE.findall(source)


def lsp_position(codec: PositionCodec, lines: list[str], pos: Position) -> types.Position:
    return codec.position_to_client_units(lines, types.Position(line=pos.line, character=pos.column))


def lsp_range(codec: PositionCodec, lines: list[str], rng: Range) -> types.Range:
    return types.Range(start=lsp_position(codec, lines, rng.start), end=lsp_position(codec, lines, rng.end))


def _range_json(r: types.Range) -> dict[str, Any]:
    return {"start": {"line": r.start.line, "character": r.start.character},
            "end": {"line": r.end.line, "character": r.end.character}}


def lsp_diagnostic(codec: PositionCodec, lines: list[str], d: Diagnostic) -> types.Diagnostic:
    """The LSP shape of CONTRACT.md's `--format json` diagnostic, in the client's position units."""
    from losslint.rules import rule_by_id

    rule = rule_by_id(d.code)
    data: dict[str, Any] = {"name": d.name, "scope": d.scope}
    if d.fix is not None:
        data["fix"] = {
            "title": d.fix.title,
            "applicability": d.fix.applicability,
            "confirmed": d.fix.confirmed,
            "edits": [{"range": _range_json(lsp_range(codec, lines, e.range)), "newText": e.new_text}
                      for e in d.fix.edits],
        }
        if d.fix.evidence is not None:
            data["fix"]["evidence"] = d.fix.evidence
    return types.Diagnostic(
        range=lsp_range(codec, lines, d.range),
        severity=types.DiagnosticSeverity(int(d.severity)),
        code=d.code,
        code_description=types.CodeDescription(href=rule.docs_url()) if rule else None,
        source="losslint",
        message=d.message,
        data=data,
    )


def fix_title(fix: Fix) -> str:
    if fix.confirmed is True:
        return fix.title
    return f"{fix.title} (unconfirmed)"


def offers_fix(fix: Fix | None) -> bool:
    """A fix worth a quick fix: it has edits, is not display-only, and TensorFlow did not reject it."""
    return fix is not None and bool(fix.edits) and fix.applicability != "display-only" and fix.confirmed is not False


def _comment_lines(source: str) -> set[int] | None:
    """0-based lines whose end is code (not inside a string or after a backslash): a comment may go there."""
    out: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT):
                out.add(tok.start[0] - 1)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    return out


def disable_edit(source: str, d: Diagnostic) -> Edit | None:
    """The edit that adds `d.code` to a `# losslint: ignore[...]` comment on the finding's statement: on the first
    line from the finding's start where a comment is legal, extending an ignore comment already there."""
    lines = split_lines(source)
    if not lines:
        return None
    legal = _comment_lines(source)
    line_no = min(d.range.start.line, len(lines) - 1)
    if legal is not None:
        line_no = next((n for n in sorted(legal) if n >= line_no), line_no)
    text = lines[line_no].rstrip("\r\n")
    comment = _comment_at(source, line_no)
    if comment is not None:
        col, ctext = comment
        for m in _IGNORE_RE.finditer(ctext):
            if m.group("file"):
                continue
            if m.group("codes") is None:
                return None  # `# losslint: ignore` already covers every rule
            codes = [c.strip() for c in re.split(r"[\s,]+", m.group("codes")) if c.strip()]
            if any(c.upper() == d.code.upper() for c in codes):
                return None
            start, end = m.span("codes")
            return Edit(Range(Position(line_no, col + start), Position(line_no, col + end)),
                        ", ".join([*codes, d.code]))
    code_end = len(text.rstrip())
    return Edit(Range(Position(line_no, code_end), Position(line_no, len(text))), f"  # losslint: ignore[{d.code}]")


def _comment_at(source: str, line_no: int) -> tuple[int, str] | None:
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT and tok.start[0] - 1 == line_no:
                return tok.start[1], tok.string
            if tok.start[0] - 1 > line_no:
                break
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return None


# --- server state ----------------------------------------------------------------------------------------------

@dataclass
class Linted:
    """One lint of one version of an open document, with its diagnostics in model and client units."""

    version: int | None
    source: str
    lines: list[str]
    path: str
    settings: Settings
    result: FileResult
    pairs: list[tuple[Diagnostic, types.Diagnostic]] = field(default_factory=list)


class LosslintServer(LanguageServer):
    def __init__(self, confirm: bool = True) -> None:
        super().__init__("losslint", __version__)
        self.linted: dict[str, Linted] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}
        self.shown_errors: set[str] = set()
        self.confirm = confirm
        self.confirming: dict[str, asyncio.Task[None]] = {}
        # one confirmation queued at a time; confirm_files' own lock keeps a cancelled one's thread from overlapping
        self._confirm_lock: asyncio.Lock | None = None

    # settings ------------------------------------------------------------------------------------------------
    def settings_for(self, path: str | None) -> Settings:
        """The nearest config's settings (as the CLI resolves them); a broken config is shown once and the
        defaults are used."""
        target = path or self.workspace.root_path or "."
        try:
            settings = api.settings_for(target, api.Overrides())
            api.selected_rules(settings, target)  # unknown selectors raise here
            return settings
        except ConfigError as err:
            message = f"losslint: configuration error, using the defaults: {err}"
            if message not in self.shown_errors:
                self.shown_errors.add(message)
                self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
            return Settings()

    def reload_config(self) -> None:
        _config_in.cache_clear()
        self.shown_errors.clear()
        self.linted.clear()  # lints made with the old settings
        for uri in list(self.workspace.text_documents):
            self.schedule(uri, 0)

    # linting -------------------------------------------------------------------------------------------------
    def is_lintable(self, uri: str) -> bool:
        doc = self.workspace.text_documents.get(uri)
        if doc is None:
            return False
        return doc.language_id == "python" or uri.endswith((".py", ".pyi"))

    def snapshot(self, uri: str) -> tuple[int | None, str, str | None]:
        doc = self.workspace.get_text_document(uri)
        return doc.version, doc.source, doc.path if uri.startswith("file:") else None

    def lint(self, version: int | None, source: str, path: str | None, settings: Settings) -> Linted:
        """Runs off the event loop (in a thread) for published diagnostics; pure apart from the position codec."""
        name = path or "<untitled>"
        result = api.lint_source(source, name, settings)
        lines = split_lines(source)
        codec = self.workspace.position_codec
        pairs = [(d, lsp_diagnostic(codec, lines, d)) for d in result.diagnostics]
        return Linted(version, source, lines, name, settings, result, pairs)

    def current(self, uri: str) -> Linted | None:
        """The lint of the document's current version, linting now if the cached one is stale."""
        if not self.is_lintable(uri):
            return None
        version, source, path = self.snapshot(uri)
        cached = self.linted.get(uri)
        if cached is not None and cached.version == version and cached.source == source:
            return cached
        linted = self.lint(version, source, path, self.settings_for(path))
        self.linted[uri] = linted
        return linted

    def schedule(self, uri: str, delay: float) -> None:
        old = self.pending.pop(uri, None)
        if old is not None:
            old.cancel()
        if not self.is_lintable(uri):
            return
        task = asyncio.get_running_loop().create_task(self._lint_and_publish(uri, delay))
        self.pending[uri] = task
        task.add_done_callback(lambda t, uri=uri: self.pending.pop(uri, None) if self.pending.get(uri) is t else None)

    async def _lint_and_publish(self, uri: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if not self.is_lintable(uri):
            return
        version, source, path = self.snapshot(uri)
        settings = self.settings_for(path)
        linted = await asyncio.to_thread(self.lint, version, source, path, settings)
        if uri not in self.workspace.text_documents or self.snapshot(uri)[0] != version:
            return  # closed or changed meanwhile: a newer run publishes
        self.linted[uri] = linted
        if linted.result.error is not None and linted.result.error.kind != "syntax-error":
            self.window_log_message(types.LogMessageParams(
                type=types.MessageType.Warning,
                message=f"losslint: {linted.path}: {linted.result.error.kind}: {linted.result.error.message}"))
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=version, diagnostics=[lsp for _, lsp in linted.pairs]))
        if self.confirm and not delay and any(_unconfirmed(d.fix) for d, _ in linted.pairs):
            old = self.confirming.pop(uri, None)
            if old is not None:
                old.cancel()
            task = asyncio.get_running_loop().create_task(self._confirm_and_publish(uri, linted))
            self.confirming[uri] = task
            task.add_done_callback(
                lambda t, uri=uri: self.confirming.pop(uri, None) if self.confirming.get(uri) is t else None)

    async def _confirm_and_publish(self, uri: str, linted: Linted) -> None:
        """Confirm the fixes of an opened or saved document, then publish its diagnostics again with the verdicts
        (code actions and fix-all read them). Dropped if the document changed meanwhile."""
        from losslint.fixes.confirm import confirm_file

        if self._confirm_lock is None:
            self._confirm_lock = asyncio.Lock()
        async with self._confirm_lock:
            if uri not in self.workspace.text_documents or self.snapshot(uri)[0] != linted.version:
                return
            diagnostics = await asyncio.to_thread(confirm_file, linted.path, linted.source,
                                                  linted.result.diagnostics)
        if uri not in self.workspace.text_documents or self.snapshot(uri)[0] != linted.version \
                or self.linted.get(uri) is not linted:
            return
        codec = self.workspace.position_codec
        result = replace(linted.result, diagnostics=tuple(diagnostics))
        confirmed = Linted(linted.version, linted.source, linted.lines, linted.path, linted.settings, result,
                           [(d, lsp_diagnostic(codec, linted.lines, d)) for d in result.diagnostics])
        self.linted[uri] = confirmed
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=linted.version, diagnostics=[lsp for _, lsp in confirmed.pairs]))

    def clear(self, uri: str) -> None:
        for tasks in (self.pending, self.confirming):
            old = tasks.pop(uri, None)
            if old is not None:
                old.cancel()
        self.linted.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

def workspace_edit(uri: str, version: int | None, edits: list[types.TextEdit],
                   document_changes: bool = False) -> types.WorkspaceEdit:
    if document_changes:
        doc = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=doc, edits=edits)])
    return types.WorkspaceEdit(changes={uri: edits})


def text_edits(codec: PositionCodec, lines: list[str], edits: tuple[Edit, ...] | list[Edit]) -> list[types.TextEdit]:
    return [types.TextEdit(range=lsp_range(codec, lines, e.range), new_text=e.new_text) for e in edits]


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(p: types.Position) -> tuple[int, int]:
        return p.line, p.character
    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def _wanted(kind: str, only: list[str] | None) -> bool:
    return not only or any(kind == o or kind.startswith(o + ".") for o in only)


def code_actions(uri: str, linted: Linted, params: types.CodeActionParams, codec: PositionCodec,
                 document_changes: bool = False) -> list[types.CodeAction]:
    """Quick fixes and "disable" actions for the findings in the requested range, and the fix-all source action."""
    only = [str(k) for k in params.context.only] if params.context.only else None
    actions: list[types.CodeAction] = []
    quick = types.CodeActionKind.QuickFix.value

    def edit(edits: tuple[Edit, ...] | list[Edit]) -> types.WorkspaceEdit:
        return workspace_edit(uri, linted.version, text_edits(codec, linted.lines, edits), document_changes)

    for d, lsp in linted.pairs:
        if not _overlaps(lsp.range, params.range) or not _wanted(quick, only):
            continue
        if offers_fix(d.fix):
            fix = d.fix
            assert fix is not None
            actions.append(types.CodeAction(
                title=f"{d.code}: {fix_title(fix)}", kind=types.CodeActionKind.QuickFix, diagnostics=[lsp],
                is_preferred=fix.applicability == "safe" and fix.confirmed is True, edit=edit(fix.edits)))
        disable = disable_edit(linted.source, d)
        if disable is not None:
            actions.append(types.CodeAction(title=f"Disable {d.code} for this line",
                                            kind=types.CodeActionKind.QuickFix, diagnostics=[lsp],
                                            edit=edit([disable])))
    if _wanted(FIX_ALL_KIND, only):
        fixed = fix_all(linted)
        if fixed is not None:
            end = Position(len(linted.lines), 0)
            actions.append(types.CodeAction(title="Fix all safe losslint issues", kind=FIX_ALL_KIND,
                                            edit=edit([Edit(Range(Position(0, 0), end), fixed)])))
    return actions


def _unconfirmed(fix: Fix | None) -> bool:
    return fix is not None and bool(fix.edits) and fix.applicability != "display-only" and fix.confirmed is None \
        and not (isinstance(fix.evidence, dict) and fix.evidence.get("reason"))


def fix_all(linted: Linted) -> str | None:
    """The text after every confirmed safe fix (re-linting between passes, as `losslint fix`), or None."""
    from losslint.fixes.apply import eligible, fix_text

    if not any(eligible(d.fix, unsafe=False) for d, _ in linted.pairs):
        return None
    first = [linted.result]

    def lint(source: str, path: str) -> FileResult:
        if first:
            return first.pop()
        return api.lint_source(source, path, linted.settings)

    outcome = fix_text(linted.source, linted.path, lint, unsafe=False)
    return outcome.fixed if outcome.changed and outcome.error is None else None


def hover(linted: Linted, position: types.Position, markdown: bool = True) -> types.Hover | None:
    from losslint.docs import rule_page
    from losslint.rules import rule_by_id

    point = types.Range(start=position, end=position)
    hits = [(d, lsp) for d, lsp in linted.pairs if _overlaps(lsp.range, point)]
    pages: list[str] = []
    for d, _ in hits:
        rule = rule_by_id(d.code)
        if rule is not None and (page := rule_page(rule)) not in pages:
            pages.append(page)
    if not pages:
        return None
    kind = types.MarkupKind.Markdown if markdown else types.MarkupKind.PlainText
    return types.Hover(contents=types.MarkupContent(kind=kind, value="\n---\n\n".join(pages)), range=hits[0][1].range)


# --- the server and its handlers -------------------------------------------------------------------------------

def make_server(confirm: bool = True) -> LosslintServer:
    server = LosslintServer(confirm)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: LosslintServer, params: types.InitializedParams) -> None:
        caps = ls.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps else None
        if watched is None or not watched.dynamic_registration:
            return  # didSave of a config file still reloads
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern=f"**/{name}") for name in CONFIG_FILES])
        try:
            await ls.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
                id=WATCHER_ID, method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options)]))
        except Exception as err:  # noqa: BLE001 - a client that refuses only loses config reload
            logger.warning("could not register the config file watcher: %s", err)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LosslintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LosslintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, DEBOUNCE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LosslintServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri.endswith(tuple("/" + n for n in CONFIG_FILES)):
            ls.reload_config()
        else:
            ls.schedule(uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LosslintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.clear(params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: LosslintServer, params: types.DidChangeWatchedFilesParams) -> None:
        if any(c.uri.endswith(tuple("/" + n for n in CONFIG_FILES)) for c in params.changes):
            ls.reload_config()

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND], resolve_provider=False))
    def code_action(ls: LosslintServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        uri = params.text_document.uri
        linted = ls.current(uri)
        if linted is None:
            return None
        caps = ls.client_capabilities.workspace
        changes = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
        return code_actions(uri, linted, params, ls.workspace.position_codec, changes) or None

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: LosslintServer, params: types.HoverParams) -> types.Hover | None:
        linted = ls.current(params.text_document.uri)
        if linted is None:
            return None
        caps = ls.client_capabilities.text_document
        formats = caps.hover.content_format if caps and caps.hover else None
        return hover(linted, params.position, markdown=not formats or types.MarkupKind.Markdown in formats)

    return server


def serve(confirm: bool = True) -> None:
    """Start the server on stdin/stdout (stdout carries the protocol; logs go to stderr)."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="losslint-server %(levelname)s: %(message)s")
    make_server(confirm).start_io()
