"""docs/ stands alone: every file a doc names is in this repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP = "docs|securedrop_wm|source_ui|journalist_ui|transfer_api|tests|scripts|bench|ansible"
PATH = re.compile(rf"(?<![\w/.~-])((?:{TOP}|requirements|fuzz|\.ci)/[\w./*<>-]*[\w*>])")
MARKDOWN = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")


def test_every_file_a_doc_names_is_in_the_repository() -> None:
    missing = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        for name in PATH.findall(text):
            # "path::test" names a test in a file; "<lang>" is any one folder
            pattern = re.sub(r"<[^>]+>", "*", name.split("::")[0])
            if not any(ROOT.glob(pattern)):
                missing.append(f"{doc.name}: {name}")
        for name in MARKDOWN.findall(text):
            if not ((ROOT / "docs" / name).exists() or (ROOT / name).exists()):
                missing.append(f"{doc.name}: {name}")
    assert not missing, "\n".join(missing)
