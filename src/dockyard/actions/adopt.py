"""`dockyard adopt`: a service's own Dockerfile rewritten onto one of the fleet's families."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.errors import ManifestError

if TYPE_CHECKING:
    from dockyard.manifest.load import Fleet
    from dockyard.render.adopt import AdoptResult


def require_family(fleet: Fleet, family: str) -> None:
    """Raise when the fleet has no such family, with the nearest name when there is one."""
    if family in fleet.spec.families:
        return
    close = difflib.get_close_matches(family, list(fleet.spec.families), n=1)
    raise ManifestError(
        f"no family {family!r} in {fleet.path.name}"
        + (f" (did you mean {close[0]!r}?)" if close else ""),
        where=fleet.where("families"),
        fix="one of: " + (", ".join(sorted(fleet.spec.families)) or "(none: add one)"))


def read_dockerfile(dockerfile: Path) -> tuple[str, dict[str, str]]:
    """The Dockerfile's text, and the requirement files its pip installs read (`-r FILE`)
    that are beside it: name -> text."""
    from dockyard.render.adopt import wanted_files

    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {dockerfile}: {getattr(exc, 'strerror', None) or exc}",
                            fix="pass the path of a service's Dockerfile") from None
    files = {}
    for name in wanted_files(text):
        path = dockerfile.parent / name
        if path.is_file():
            files[name] = path.read_text(encoding="utf-8", errors="replace")
    return text, files


def adopt(fleet: Fleet, dockerfile: Path, family: str) -> AdoptResult:
    """The Dockerfile rewritten to build on `family`, with what was converted and what a
    person must review."""
    from dockyard.plan.plan import MOVING_TAG, image_name
    from dockyard.render.adopt import adopt as adopt_dockerfile
    from dockyard.render.adopt import family_facts

    require_family(fleet, family)
    text, files = read_dockerfile(dockerfile)
    facts = family_facts(fleet.spec, family, f"{image_name(fleet, family, 'family')}:{MOVING_TAG}")
    return adopt_dockerfile(text, facts, source=str(dockerfile), files=files)
