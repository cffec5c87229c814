"""What `lmrec-train --help` lists: the config groups a user composes a run from, and their options.

Hydra's own listing shows every yaml of a group folder, including the files that only hold shared options for the
group's real options (`data/_common.yaml`, `model/tuning/_tuned.yaml`, ...), which are not choices. The help
template (`conf/hydra/default.yaml`) calls `${lmrec.config_groups:}` instead, which lists the same groups from
Hydra's config repository (so a researcher's own config folders on `hydra.searchpath` are listed too) without the
internal `_*` files and without Hydra's own groups.
"""

from __future__ import annotations

from collections.abc import Callable


def _is_choice(name: str) -> bool:
    return not name.rsplit("/", 1)[-1].startswith("_")


def format_groups(list_groups: Callable[[str], list[str]], list_options: Callable[[str], list[str]]) -> str:
    """`group: option, option` lines, sorted, for every group with at least one option, nested groups included."""
    lines: list[tuple[str, str]] = []

    def walk(parent: str) -> None:
        for group in sorted(list_groups(parent)):
            name = f"{parent}/{group}" if parent else group
            if name == "hydra" or not _is_choice(name):
                continue
            options = sorted(o for o in list_options(name) if _is_choice(o))
            if options:
                lines.append((name, f"{name}: {', '.join(options)}"))
            walk(name)

    walk("")
    return "\n".join(line for _, line in sorted(lines))


def config_groups() -> str:
    """Resolver `${lmrec.config_groups:}`: the listing of Hydra's current config repository, or of lmrec's own
    config folder when no Hydra application is running."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    if GlobalHydra.instance().is_initialized():
        loader = GlobalHydra.instance().config_loader()
        return format_groups(
            lambda parent: list(loader.list_groups(parent)),
            lambda group: list(loader.get_group_options(group, ObjectType.CONFIG)),
        )
    from lmrec.config.location import config_dir

    root = config_dir()

    def folders(parent: str) -> list[str]:
        return [p.name for p in (root / parent).iterdir() if p.is_dir() and not p.name.startswith("__")]

    return format_groups(folders, lambda group: [p.stem for p in (root / group).glob("*.yaml")])
