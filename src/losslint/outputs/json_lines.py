"""`--format json-lines`: one JSON object per line, for streaming and `jq`.

Each finding is the diagnostic object of `--format json` (LSP positions: 0-based, UTF-16; `data.cell` in notebooks)
with `path` first; a file that could not be analysed is `{"path": ..., "error": {"kind": ..., "message": ...}}`.
"""

from __future__ import annotations

import json

from losslint.model import FileResult
from losslint.outputs.json_output import file_dict


def render(results: list[FileResult]) -> str:
    out: list[str] = []
    for r in results:
        f = file_dict(r)
        if f["error"] is not None:
            out.append(json.dumps({"path": r.path, "error": f["error"]}, ensure_ascii=False))
            continue
        out.extend(json.dumps({"path": r.path, **d}, ensure_ascii=False) for d in f["diagnostics"])
    return "\n".join(out) + ("\n" if out else "")
