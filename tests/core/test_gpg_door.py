"""One door to GnuPG: only securedrop_wm/crypto.py (and the helpers split from it,
``GPG_MODULES``) starts gpg (or its agent tools), never through a shell; and the
air-gapped workstation's bundle code does not load the server's."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import securedrop_wm

PACKAGE = Path(securedrop_wm.__file__).parent
# crypto.py and the modules split from it, which only it imports.
GPG_MODULES = ("crypto.py", "gpg_support.py", "gpg_stream.py", "source_keys.py")
# The calls that start a process.
_STARTERS = {
    ("subprocess", "run"),
    ("subprocess", "Popen"),
    ("subprocess", "call"),
    ("subprocess", "check_call"),
    ("subprocess", "check_output"),
    ("os", "system"),
    ("os", "popen"),
    ("os", "execv"),
    ("os", "execvp"),
    ("os", "execl"),
    ("os", "execlp"),
    ("os", "spawnv"),
    ("os", "spawnvp"),
    ("os", "posix_spawn"),
    ("os", "posix_spawnp"),
    ("asyncio", "create_subprocess_exec"),
    ("asyncio", "create_subprocess_shell"),
}


def _starts(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if (func.value.id, func.attr) in _STARTERS:
            return f"{func.value.id}.{func.attr}"
    return None


def _mentions_gpg(node: ast.AST) -> bool:
    """Whether a call's program could be gpg: a "gpg…" string, or a name holding one."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            if sub.value.split("/")[-1].startswith("gpg"):
                return True
        if isinstance(sub, ast.Name) and "gpg" in sub.id.lower():
            return True
        if isinstance(sub, ast.Attribute) and "gpg" in sub.attr.lower():
            return True
    return False


def _side_doors() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            starter = _starts(node)
            shell = any(
                k.arg == "shell" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                for k in node.keywords
            )
            if starter in ("os.system", "os.popen", "asyncio.create_subprocess_shell") or shell:
                found.append(f"{where}:{node.lineno}: a shell ({starter or 'shell=True'})")
            elif starter and path.name not in GPG_MODULES and _mentions_gpg(node):
                found.append(f"{where}:{node.lineno}: starts gpg outside crypto.py")
    return found


def test_only_crypto_starts_gpg_and_nothing_uses_a_shell() -> None:
    assert _side_doors() == []


def test_the_door_check_sees_a_side_door() -> None:
    # The check would see the kinds of call it forbids (it is not vacuous)
    code = 'import os, subprocess\nos.system("x")\nsubprocess.run(["gpg", "--verify"])\n'
    tree = ast.parse(code)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert [_starts(c) for c in calls] == ["os.system", "subprocess.run"]
    assert _mentions_gpg(calls[1])


def _fresh(*imports: str) -> list[set[str]]:
    """Run ``imports`` in a fresh interpreter; after each, the securedrop_wm modules loaded."""
    code = "import sys\n" + "".join(
        f"{line}\nprint(' '.join(m for m in sys.modules if m.startswith('securedrop_wm')))\n"
        for line in imports
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [set(line.split()) for line in out.stdout.splitlines()]


def test_workstation_bundle_code_does_not_load_the_server() -> None:
    # Importing the workstation's services, import and reply modules, in a fresh
    # interpreter...
    [loaded] = _fresh(
        "import securedrop_wm.workstation.importing, securedrop_wm.workstation.replies, "
        "securedrop_wm.workstation.services"
    )
    # ...loads the bundle code they need, and nothing of the server: not its bundle side,
    # not its services, not its database models
    assert "securedrop_wm.bundles.archive" in loaded
    for server_side in ("bundles.server", "drop", "models"):
        assert f"securedrop_wm.{server_side}" not in loaded


def test_bundle_package_alone_does_not_load_the_server_models() -> None:
    # The bundle package (errors, manifests, tar, signature) knows nothing of the server's
    # database; its server half is loaded only when one of its names is used.
    verifying, exporting = _fresh(
        "from securedrop_wm.bundles import verify_export_bundle, write_reply_bundle",
        "from securedrop_wm.bundles import export_bundle",
    )
    for server_side in ("bundles.server", "drop", "models"):
        assert f"securedrop_wm.{server_side}" not in verifying
    assert "securedrop_wm.bundles.server" in exporting
