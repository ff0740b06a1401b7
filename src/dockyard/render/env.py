"""`.env.example`: every variable the manifest reads, with its default or why it is needed."""

from __future__ import annotations

import re

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def render_env_example(manifest_text: str) -> str:
    found: dict[str, str] = {}
    for line in manifest_text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for name, op, arg, bare in _VAR.findall(line.replace("$$", "")):
            key = name or bare
            if op.endswith("-"):
                entry = f"{key}={arg}"
            elif op.endswith("?"):
                entry = f"# required: {arg or 'no default'}\n{key}="
            else:
                entry = f"{key}="
            found.setdefault(key, entry)
    head = ("# Variables fleet.yaml reads; copy to .env beside it and fill in. "
            "Rendered by dockyard.\n")
    return head + "".join(f"{found[k]}\n" for k in sorted(found))
