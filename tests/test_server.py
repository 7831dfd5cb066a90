"""The language server (`losslint server`): end to end with a real LSP client over stdio (pytest-lsp), plus unit
tests of the mapping from the model to LSP.

Set LOSSLINT_WRITE_LSP_TRANSCRIPT=1 to rewrite docs/lsp-session.md from `test_session_transcript`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pygls.protocol import default_converter  # noqa: E402
from pygls.workspace.position_codec import PositionCodec  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402
from pytest_lsp.client import register_lsp_features  # noqa: E402
from pytest_lsp.protocol import LanguageClientProtocol  # noqa: E402

from losslint.model import Diagnostic, Edit, Fix, Position, Range, Severity  # noqa: E402
from losslint.server import (  # noqa: E402
    FIX_ALL_KIND, Linted, code_actions, disable_edit, fix_all, hover, lsp_diagnostic, split_lines,
)
from losslint.config import Settings  # noqa: E402
from losslint.model import FileResult  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# The finding is on line 6; the astral character before it on the same line makes its UTF-16 column one more than
# its code-point column (U+1F600 is one code point, two UTF-16 units).
BUGGY = '''\
import tensorflow as tf

GREETING = "\U0001F600 hello"


def crossentropy(y_true, y_pred):
    tag = "\U0001F600"; return -tf.reduce_sum(y_true * tf.math.log(y_pred), axis=-1)
'''
FIXED = BUGGY.replace("tf.math.log(y_pred)", "tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0))")
FINDING_LINE = 6
LINE_TEXT = BUGGY.splitlines()[FINDING_LINE]
CODEPOINT_COL = LINE_TEXT.index("tf.math.log")
UTF16_COL = len(LINE_TEXT[:CODEPOINT_COL].encode("utf-16-le")) // 2


class RecordingProtocol(LanguageClientProtocol):
    """The test client's protocol, keeping every JSON-RPC message sent and received (for docs/lsp-session.md)."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.transcript: list[tuple[str, dict]] = []

    def _send_data(self, data):  # type: ignore[no-untyped-def]
        if data:
            self.transcript.append(("client -> server", json.loads(json.dumps(data, default=self._serialize_message))))
        return super()._send_data(data)

    def structure_message(self, data):  # type: ignore[no-untyped-def]
        if isinstance(data, dict) and "jsonrpc" in data:
            self.transcript.append(("server -> client", json.loads(json.dumps(data))))
        return super().structure_message(data)


def make_client() -> LanguageClient:
    client = LanguageClient(protocol_cls=RecordingProtocol, converter_factory=default_converter)
    register_lsp_features(client)
    client.registrations = []  # type: ignore[attr-defined]

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(client: LanguageClient, params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    return client


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "losslint", "server", "--no-confirm"],
                            client_factory=make_client, server_env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
CONFIRMING = ClientServerConfig(server_command=[sys.executable, "-m", "losslint", "server"], client_factory=make_client,
                                server_env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def capabilities(encodings: list[types.PositionEncodingKind] | None = None) -> types.ClientCapabilities:
    return types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=encodings),
        workspace=types.WorkspaceClientCapabilities(
            did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True)),
        text_document=types.TextDocumentClientCapabilities(
            hover=types.HoverClientCapabilities(content_format=[types.MarkupKind.Markdown])),
    )


# One server for most end-to-end tests (starting one costs about a second); each test uses its own files.
E2E = pytest.mark.asyncio(loop_scope="module")


async def _initialize(client: LanguageClient, root: Path, encodings=None) -> None:  # type: ignore[no-untyped-def]
    result = await client.initialize_session(types.InitializeParams(
        capabilities=capabilities(encodings), root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="project")]))
    client.init_result = result  # type: ignore[attr-defined]


@pytest_lsp.fixture(config=SERVER, scope="module")
async def client(lsp_client: LanguageClient, tmp_path_factory: pytest.TempPathFactory):
    await _initialize(lsp_client, tmp_path_factory.mktemp("workspace"))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, loop_scope="module")
async def fresh_client(lsp_client: LanguageClient, tmp_path: Path):
    """A server of its own (for the transcript, which starts at `initialize`)."""
    await _initialize(lsp_client, tmp_path)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=CONFIRMING, loop_scope="module")
async def confirming_client(lsp_client: LanguageClient, tmp_path: Path):
    """A server that confirms fixes in the background (the default)."""
    await _initialize(lsp_client, tmp_path)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=SERVER, loop_scope="module")
async def client32(lsp_client: LanguageClient, tmp_path: Path):
    """A client that offers only UTF-32 positions."""
    await _initialize(lsp_client, tmp_path, [types.PositionEncodingKind.Utf32])
    yield
    await lsp_client.shutdown_session()


def publishes(client: LanguageClient, uri: str) -> int:
    """How many publishDiagnostics for `uri` the client has received."""
    return sum(1 for way, m in client.protocol.transcript  # type: ignore[attr-defined]
               if way == "server -> client" and m.get("method") == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS
               and m["params"]["uri"] == uri)


async def published(client: LanguageClient, uri: str, before: int, timeout: float = 10.0) -> None:
    """Wait until a publishDiagnostics for `uri` arrives after the `before`-th (other documents may publish too)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while publishes(client, uri) <= before:
        assert loop.time() < deadline, f"no diagnostics published for {uri}"
        await asyncio.sleep(0.01)


async def open_doc(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))
    await published(client, uri, 0)
    return uri


async def change_doc(client: LanguageClient, uri: str, text: str, version: int, wait: bool = True) -> None:
    before = publishes(client, uri)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
    if wait:
        await published(client, uri, before)


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions) to `text`, as an editor does."""
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        line = lines[pos.line] if pos.line < len(lines) else ""
        units, col = 0, 0
        while units < pos.character and col < len(line):
            units += 2 if ord(line[col]) > 0xFFFF else 1
            col += 1
        return sum(len(x) for x in lines[:pos.line]) + col

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


# --- end to end ---------------------------------------------------------------------------------------------------

@E2E
async def test_initialize_advertises_features(client: LanguageClient):
    caps = client.init_result.capabilities  # type: ignore[attr-defined]
    assert caps.position_encoding == types.PositionEncodingKind.Utf16
    assert caps.hover_provider
    assert set(caps.code_action_provider.code_action_kinds) >= {types.CodeActionKind.QuickFix, FIX_ALL_KIND}
    for _ in range(500):  # the watcher registration follows `initialized`
        if client.registrations:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    [reg] = client.registrations  # type: ignore[attr-defined]
    assert reg.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    assert {w["globPattern"] for w in reg.register_options["watchers"]} == {"**/pyproject.toml", "**/losslint.toml"}


@E2E
async def test_diagnostic_is_published_in_utf16(client: LanguageClient, tmp_path: Path):
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    [d] = client.diagnostics[uri]
    assert UTF16_COL == CODEPOINT_COL + 1
    assert (d.range.start.line, d.range.start.character) == (FINDING_LINE, UTF16_COL)
    end = LINE_TEXT.index("tf.math.log") + len("tf.math.log(y_pred)")
    assert (d.range.end.line, d.range.end.character) == (FINDING_LINE, end + 1)
    assert d.code == "LL101"
    assert d.source == "losslint"
    assert d.severity == types.DiagnosticSeverity.Warning
    assert d.code_description.href.endswith("docs/rules/LL101-unguarded-log.md")
    assert d.data["name"] == "unguarded-log"
    assert "crossentropy" in d.data["scope"]
    [edit] = d.data["fix"]["edits"]  # the fix's edits are in client units too
    assert edit["range"]["start"] == {"line": FINDING_LINE, "character": LINE_TEXT.index("y_pred)") + 1}
    assert d.data["fix"]["confirmed"] is None


@E2E
async def test_utf32_client_gets_code_point_columns(client32: LanguageClient, tmp_path: Path):
    assert client32.init_result.capabilities.position_encoding == types.PositionEncodingKind.Utf32  # type: ignore
    uri = await open_doc(client32, tmp_path / "loss.py", BUGGY)
    [d] = client32.diagnostics[uri]
    assert (d.range.start.line, d.range.start.character) == (FINDING_LINE, CODEPOINT_COL)


@E2E
async def test_change_to_fixed_version_clears_and_changes_are_debounced(client: LanguageClient, tmp_path: Path):
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    assert len(client.diagnostics[uri]) == 1
    before = publishes(client, uri)
    for version, text in enumerate((BUGGY + "\n", BUGGY + "\n\n", FIXED), start=2):
        await change_doc(client, uri, text, version, wait=False)
    await published(client, uri, before)
    assert list(client.diagnostics[uri]) == []
    await asyncio.sleep(0.5)
    assert publishes(client, uri) == before + 1  # three quick edits, one lint


@E2E
async def test_close_clears(client: LanguageClient, tmp_path: Path):
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    assert client.diagnostics[uri]
    before = publishes(client, uri)
    client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    await published(client, uri, before)
    assert list(client.diagnostics[uri]) == []


@E2E
async def test_code_actions_and_applying_disable(client: LanguageClient, tmp_path: Path):
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    [d] = client.diagnostics[uri]
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=d.range,
        context=types.CodeActionContext(diagnostics=[d])))
    by_title = {a.title: a for a in actions}
    assert "Disable LL101 for this line" in by_title
    [fix_title] = [t for t in by_title if t.startswith("LL101: ")]
    assert fix_title.endswith("(unconfirmed)")  # this server runs with --no-confirm
    assert "Fix all safe losslint issues" not in by_title  # nothing is confirmed safe

    disable = by_title["Disable LL101 for this line"]
    assert disable.kind == types.CodeActionKind.QuickFix
    [edit] = disable.edit.changes[uri]
    end16 = len(LINE_TEXT.encode("utf-16-le")) // 2
    assert edit.range == types.Range(start=types.Position(line=FINDING_LINE, character=end16),
                                     end=types.Position(line=FINDING_LINE, character=end16))
    assert edit.new_text == "  # losslint: ignore[LL101]"

    new_text = apply_text_edits(BUGGY, [edit])
    assert new_text.splitlines()[FINDING_LINE] == LINE_TEXT + "  # losslint: ignore[LL101]"
    await change_doc(client, uri, new_text, 2)
    assert list(client.diagnostics[uri]) == []

    # The rule's own fix, applied, also clears the finding.
    [fix_edit] = by_title[fix_title].edit.changes[uri]
    await change_doc(client, uri, apply_text_edits(BUGGY, [fix_edit]), 3)
    assert list(client.diagnostics[uri]) == []


@E2E
async def test_hover_shows_the_rule_page(client: LanguageClient, tmp_path: Path):
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    [d] = client.diagnostics[uri]
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=FINDING_LINE, character=UTF16_COL + 3)))
    assert result is not None
    assert result.contents.kind == types.MarkupKind.Markdown
    assert result.contents.value.startswith("# LL101 unguarded-log")
    assert "## Why is this bad?" in result.contents.value
    assert result.range == d.range
    nothing = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=0)))
    assert nothing is None


@E2E
async def test_config_change_relints_and_config_errors_are_shown(client: LanguageClient, tmp_path: Path):
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    assert len(client.diagnostics[uri]) == 1
    config = tmp_path / "pyproject.toml"
    seen = len(client.messages)

    async def config_changed(text: str, kind: types.FileChangeType) -> None:
        before = publishes(client, uri)
        config.write_text(text, encoding="utf-8")
        client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=config.as_uri(), type=kind)]))
        await published(client, uri, before)

    await config_changed('[tool.losslint]\nignore = ["LL101"]\n', types.FileChangeType.Created)
    assert list(client.diagnostics[uri]) == []

    await config_changed('[tool.losslint]\nignore = ["LL999"]\n', types.FileChangeType.Changed)
    [message] = client.messages[seen:]
    assert message.type == types.MessageType.Error
    assert "LL999" in message.message and "pyproject.toml" in message.message
    assert [d.code for d in client.diagnostics[uri]] == ["LL101"]  # linting goes on with the defaults

    # A client without file watching still reloads when the config file is saved in the editor.
    before = publishes(client, uri)
    config.write_text('[tool.losslint]\nselect = ["LL5"]\n', encoding="utf-8")
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=config.as_uri())))
    await published(client, uri, before)
    assert list(client.diagnostics[uri]) == []


@E2E
async def test_session_transcript(fresh_client: LanguageClient, tmp_path: Path):
    """One session (initialize, a diagnostic, a code action applied); written to docs/lsp-session.md on request."""
    client = fresh_client
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    [d] = client.diagnostics[uri]
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=d.range,
        context=types.CodeActionContext(diagnostics=[d])))
    [disable] = [a for a in actions if a.title == "Disable LL101 for this line"]
    await change_doc(client, uri, apply_text_edits(BUGGY, disable.edit.changes[uri]), 2)
    assert list(client.diagnostics[uri]) == []
    transcript = client.protocol.transcript  # type: ignore[attr-defined]
    methods = [m.get("method") for _, m in transcript]
    assert methods[:2] == ["initialize", None] and "textDocument/codeAction" in methods
    if os.environ.get("LOSSLINT_WRITE_LSP_TRANSCRIPT"):
        (ROOT / "docs" / "lsp-session.md").write_text(render_transcript(transcript, tmp_path), encoding="utf-8")


def render_transcript(transcript: list[tuple[str, dict]], tmp_path: Path) -> str:
    parts = [
        "# A `losslint server` session",
        "",
        "Every JSON-RPC message of one session between a client (pytest-lsp, as in `tests/test_server.py`) and "
        "`losslint server` over stdio: initialize, open a file with an unguarded log, receive the diagnostic, ask "
        "for code actions, apply \"Disable LL101 for this line\", receive the cleared diagnostics. Captured by "
        "`LOSSLINT_WRITE_LSP_TRANSCRIPT=1 python -m pytest tests/test_server.py -k transcript`; paths are "
        "shortened to `/project`, the process id to 1234. Note the UTF-16 columns: line 6 has an emoji "
        "(two UTF-16 units, one code point) before the finding.",
        "",
    ]
    tmp_uri = tmp_path.as_uri()
    for n, (way, message) in enumerate(transcript, start=1):
        if message.get("method") in ("shutdown", "exit"):
            break
        body = json.dumps(message, indent=2, ensure_ascii=False)
        body = body.replace(tmp_uri, "file:///project").replace(str(tmp_path), "/project")
        if message.get("method") == "initialize":
            body = body.replace(f'"processId": {message["params"]["processId"]}', '"processId": 1234')
        what = message.get("method") or f"response to {message.get('id')}"
        parts += [f"## {n}. {way}: `{what}`", "", "```json", body, "```", ""]
    return "\n".join(parts)


# --- unit: the mapping, without a client ------------------------------------------------------------------------

def _diag(line: int, start: int, end: int, code: str = "LL101", fix: Fix | None = None) -> Diagnostic:
    return Diagnostic(code, "unguarded-log", "log of y_pred", Range(Position(line, start), Position(line, end)),
                      Severity.WARNING, "loss function `f`", fix)


def _linted(source: str, diagnostics: list[Diagnostic], version: int = 1) -> Linted:
    codec = PositionCodec()
    lines = split_lines(source)
    result = FileResult("/p/loss.py", source, tuple(diagnostics))
    return Linted(version, source, lines, "/p/loss.py", Settings(), result,
                  [(d, lsp_diagnostic(codec, lines, d)) for d in diagnostics])


def _request(linted: Linted, only: list[str] | None = None) -> types.CodeActionParams:
    start = linted.pairs[0][1].range if linted.pairs else types.Range(start=types.Position(line=0, character=0),
                                                                     end=types.Position(line=0, character=0))
    return types.CodeActionParams(text_document=types.TextDocumentIdentifier(uri="file:///p/loss.py"), range=start,
                                  context=types.CodeActionContext(diagnostics=[], only=only))


def test_split_lines_follows_lsp_line_breaks():
    assert split_lines("a\r\nb\rc\nd\x0ce") == ["a\r\n", "b\r", "c\n", "d\x0ce"]
    assert split_lines("") == []
    assert split_lines("x\n") == ["x\n"]


def test_lsp_diagnostic_converts_columns_and_fix_edits():
    src = 'x = "\U0001F600"; y = log(p)\n'
    col = src.index("log")
    fix = Fix("clip p", "safe", (Edit(Range(Position(0, col + 4), Position(0, col + 5)), "clip(p)"),), True)
    d = lsp_diagnostic(PositionCodec(), split_lines(src), _diag(0, col, col + 6, fix=fix))
    assert d.range.start.character == col + 1 and d.range.end.character == col + 7
    assert d.data["fix"]["edits"][0]["range"]["start"]["character"] == col + 5
    utf8 = lsp_diagnostic(PositionCodec(types.PositionEncodingKind.Utf8), split_lines(src), _diag(0, col, col + 6))
    assert utf8.range.start.character == len(src[:col].encode("utf-8"))


@pytest.mark.parametrize(("confirmed", "suffix", "preferred"), [(True, "", True), (None, " (unconfirmed)", False)])
def test_quick_fix_from_a_constructed_diagnostic(confirmed, suffix, preferred):
    src = "def f(y_true, y_pred):\n    return log(y_pred)\n"
    fix = Fix("bound y_pred below", "safe", (Edit(Range(Position(1, 15), Position(1, 21)), "maximum(y_pred, 1e-7)"),),
              confirmed)
    linted = _linted(src, [_diag(1, 11, 22, fix=fix)])
    actions = code_actions("file:///p/loss.py", linted, _request(linted), PositionCodec())
    [quick] = [a for a in actions if a.title.startswith("LL101:")]
    assert quick.title == "LL101: bound y_pred below" + suffix
    assert quick.is_preferred is preferred
    [edit] = quick.edit.changes["file:///p/loss.py"]
    assert edit.new_text == "maximum(y_pred, 1e-7)"
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.character) == (1, 15, 21)
    assert [a.title for a in actions if a.kind == FIX_ALL_KIND] == (["Fix all safe losslint issues"] if confirmed
                                                                     else [])


def test_rejected_and_display_only_fixes_are_not_offered():
    src = "def f(y_true, y_pred):\n    return log(y_pred)\n"
    edits = (Edit(Range(Position(1, 15), Position(1, 21)), "z"),)
    for fix in (Fix("t", "safe", edits, False), Fix("t", "display-only", edits, True)):
        linted = _linted(src, [_diag(1, 11, 22, fix=fix)])
        titles = [a.title for a in code_actions("file:///p/loss.py", linted, _request(linted), PositionCodec())]
        assert titles == ["Disable LL101 for this line"]


def test_fix_all_applies_only_confirmed_safe_fixes_and_honours_only():
    src = "import torch\n\ndef f(y_true, y_pred):\n    return torch.log(y_pred) + torch.log(y_true)\n"
    line = src.splitlines()[3]
    a = line.index("y_pred")
    b = line.index("y_true)")
    safe = Fix("clamp", "safe", (Edit(Range(Position(3, a), Position(3, a + 6)), "y_pred.clamp(min=1e-7)"),), True)
    unsafe = Fix("clamp", "unsafe", (Edit(Range(Position(3, b), Position(3, b + 6)), "y_true.clamp(min=1e-7)"),),
                 True)
    linted = _linted(src, [_diag(3, a - 10, a + 7, fix=safe), _diag(3, b - 10, b + 7, fix=unsafe)])
    fixed = fix_all(linted)
    assert fixed is not None
    assert "torch.log(y_pred.clamp(min=1e-7))" in fixed and "torch.log(y_true)" in fixed
    [action] = code_actions("file:///p/loss.py", linted, _request(linted, only=["source.fixAll"]), PositionCodec())
    assert action.kind == FIX_ALL_KIND
    [whole] = action.edit.changes["file:///p/loss.py"]
    assert whole.new_text == fixed
    assert whole.range.start == types.Position(line=0, character=0)
    assert whole.range.end == types.Position(line=4, character=0)
    assert code_actions("file:///p/loss.py", linted, _request(linted, only=["refactor"]), PositionCodec()) == []


def _disabled(src: str, d: Diagnostic) -> str | None:
    edit = disable_edit(src, d)
    if edit is None:
        return None
    lines = src.splitlines(keepends=True)
    start = sum(len(x) for x in lines[:edit.range.start.line]) + edit.range.start.column
    end = sum(len(x) for x in lines[:edit.range.end.line]) + edit.range.end.column
    return src[:start] + edit.new_text + src[end:]


def test_disable_appends_a_comment_and_trims_trailing_spaces():
    src = "def f(y_true, y_pred):\n    return log(y_pred)   \n"
    assert _disabled(src, _diag(1, 11, 22)) == "def f(y_true, y_pred):\n    return log(y_pred)  # losslint: ignore[LL101]\n"


def test_disable_extends_an_existing_ignore_comment():
    src = "def f(y_true, y_pred):\n    return log(y_pred) / s  # losslint: ignore[LL103]\n"
    assert _disabled(src, _diag(1, 11, 22)) == \
        "def f(y_true, y_pred):\n    return log(y_pred) / s  # losslint: ignore[LL103, LL101]\n"
    assert disable_edit(src.replace("LL103", "LL101"), _diag(1, 11, 22)) is None
    assert disable_edit(src.replace("[LL103]", ""), _diag(1, 11, 22)) is None


def test_disable_keeps_other_comments():
    src = "def f(y_true, y_pred):\n    return log(y_pred)  # noqa: E501\n"
    assert _disabled(src, _diag(1, 11, 22)) == \
        "def f(y_true, y_pred):\n    return log(y_pred)  # noqa: E501  # losslint: ignore[LL101]\n"


def test_disable_skips_lines_ending_inside_a_string_or_after_a_backslash():
    src = 'def f(y_true, y_pred):\n    return log(y_pred) + g("""a\nb""") + \\\n        1\n'
    out = _disabled(src, _diag(1, 11, 22))
    assert out == 'def f(y_true, y_pred):\n    return log(y_pred) + g("""a\nb""") + \\\n        1  # losslint: ignore[LL101]\n'


def test_disable_inside_brackets_stays_on_the_line():
    src = "def f(y_true, y_pred):\n    return tf.reduce_sum(\n        log(y_pred),\n    )\n"
    assert _disabled(src, _diag(2, 8, 19)).splitlines()[2] == "        log(y_pred),  # losslint: ignore[LL101]"


def test_disable_silences_every_reported_rule_example():
    """For each finding in the rules' INVALID examples, the inserted comment suppresses it and keeps the code
    parseable."""
    import textwrap

    from losslint import api
    from losslint.rules import all_rules

    checked = 0
    for rule in all_rules():
        for ex in rule.INVALID[:3]:  # all of them pass too, in about 3 s
            src = textwrap.dedent(ex.text)
            for d in api.lint_source(src, "example.py").diagnostics:
                out = _disabled(src, d)
                assert out is not None, (rule.code, ex.text)
                after = api.lint_source(out, "example.py")
                assert after.error is None, out
                assert not [x for x in after.diagnostics if x.code == d.code
                            and x.range.start.line == d.range.start.line], out
                checked += 1
    assert checked > 30


def test_hover_joins_pages_and_falls_back_to_plain_text():
    src = "def f(y_true, y_pred):\n    return log(y_pred) / s\n"
    linted = _linted(src, [_diag(1, 11, 22), _diag(1, 11, 26, code="LL103"), _diag(1, 11, 22)])
    result = hover(linted, types.Position(line=1, character=12), markdown=False)
    assert result is not None and result.contents.kind == types.MarkupKind.PlainText
    pages = result.contents.value.split("\n---\n\n")
    assert [p.split("\n", 1)[0] for p in pages] == ["# LL101 unguarded-log", "# LL103 unguarded-division"]
    assert hover(linted, types.Position(line=0, character=0)) is None


@E2E
@pytest.mark.tensorflow
async def test_fixes_are_confirmed_in_the_background_after_open(confirming_client: LanguageClient, tmp_path: Path):
    client = confirming_client
    uri = await open_doc(client, tmp_path / "loss.py", BUGGY)
    [first] = client.diagnostics[uri]
    assert first.data["fix"]["confirmed"] is None  # published at once, before TensorFlow has run
    await published(client, uri, 1, timeout=120.0)  # the second publication carries the verdict
    [d] = client.diagnostics[uri]
    assert d.data["fix"]["confirmed"] is True, d.data
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=d.range,
        context=types.CodeActionContext(diagnostics=[d])))
    by_title = {a.title: a for a in actions}
    [fix_title] = [t for t in by_title if t.startswith("LL101: ")]
    assert not fix_title.endswith("(unconfirmed)")
    assert by_title[fix_title].is_preferred
    fix_all_action = by_title["Fix all safe losslint issues"]  # now there is a confirmed safe fix
    [edit] = fix_all_action.edit.changes[uri]
    fixed = apply_text_edits(BUGGY, [edit])
    assert "tf.math.log(y_pred)" not in fixed
    # an edit drops the verdicts (a new lint); nothing more is published until the next save
    before = publishes(client, uri)
    await change_doc(client, uri, BUGGY + "\n", 2)
    [d2] = client.diagnostics[uri]
    assert d2.data["fix"]["confirmed"] is None and publishes(client, uri) == before + 1
