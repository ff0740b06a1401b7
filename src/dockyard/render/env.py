"""`.env.example`: every variable the manifest reads, by name; a default only where it is no
secret (a secret's default, written in fleet.yaml, is not repeated as an example to copy)."""

from __future__ import annotations

import re

from dockyard.manifest.interpolate import secret_variables, variables

# One variable as written, its default or message after the operator (one nested level).
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}"
                  r"|\$([A-Za-z_][A-Za-z0-9_]*)|\$\$")


def render_env_example(manifest_text: str) -> str:
    lines = [line for line in manifest_text.splitlines() if not line.lstrip().startswith("#")]
    secrets = secret_variables(lines)
    found: dict[str, str] = {}
    for line in lines:
        for match in _VAR.finditer(line):
            name, op, arg, bare = match.groups()
            key = name or bare
            if not key:
                continue  # `$$`: a literal dollar
            op, arg = op or "", arg or ""
            if op.endswith("?"):
                entry = f"# required: {arg or 'no default'}\n{key}="
            elif key in secrets:
                entry = f"# secret\n{key}="
            elif op.endswith("-") and "$" not in arg:
                entry = f"{key}={arg}"
            else:
                entry = f"{key}="
            found.setdefault(key, entry)
            if arg:  # ${A:-${B}}: B is read too
                for nested, _ in variables(arg):
                    secret = "# secret\n" if nested in secrets else ""
                    found.setdefault(nested, f"{secret}{nested}=")
    head = ("# Variables fleet.yaml reads; copy to .env beside it and fill in. "
            "Rendered by dockyard.\n")
    return head + "".join(f"{found[k]}\n" for k in sorted(found))
