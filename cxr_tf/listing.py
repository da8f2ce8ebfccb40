"""What a user can name in a flag, listed from the registries: ``--list-models`` and ``python -m cxr_tf list``.

One implementation serves both spellings. Each kind reads its registry (or the shipped recipes), so a
newly registered model, loss or dataset adapter is listed without touching this file.

Examples:
    >>> "cnn5" in entries("models")
    True
"""

from __future__ import annotations

from typing import Callable

from cxr_tf.registry import check_name


def _summary(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line, without reStructuredText quotes."""
    return " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "")


def _models() -> dict[str, str]:
    from cxr_tf.models import MODELS

    return {name: f"{len(MODELS.get(name).stages)} stages"
                  + (", ImageNet weights (--weights imagenet)" if MODELS.get(name).imagenet else "")
            for name in MODELS}


def _losses() -> dict[str, str]:
    from cxr_tf.training.losses import LOSSES

    return {name: _summary(LOSSES.get(name).__doc__) for name in LOSSES}


def _datasets() -> dict[str, str]:
    from cxr_tf.datasets import DATASETS, catalog

    out = {}
    for name in DATASETS:
        entry = catalog.entry(name)
        classes = f"{len(entry.classes)} classes" if entry.classes else "classes from your labels"
        out[name] = f"{entry.title} ({entry.task}, {classes})"
    return out


def _recipes() -> dict[str, str]:
    from cxr_tf import resources

    out = {}
    for name in resources.recipe_names():
        # A recipe opens with comment lines saying what it reproduces; its first sentence describes it.
        words: list[str] = []
        for line in resources.recipe(name).read_text().splitlines():
            if not line.startswith("#") or (words and words[-1].endswith(".")):
                break
            words += line.lstrip("#").split()
        out[name] = " ".join(words)
    return out


# Kind (the word after --list- and after `list`) -> its lister; the flag a kind belongs with names it
# in its config field's metadata (``config.option(..., lists="models")``).
KINDS: dict[str, Callable[[], dict[str, str]]] = {
    "models": _models,
    "datasets": _datasets,
    "recipes": _recipes,
    "losses": _losses,
}


def entries(kind: str, where: str = "") -> dict[str, str]:
    """``{name: one-line description}`` of ``kind`` (a key of ``KINDS``), in name order; ``where`` names the
    argument at fault when ``kind`` is not one."""
    return dict(sorted(KINDS[check_name("kind", kind, list(KINDS), where)]().items()))


def format_entries(kind: str, where: str = "") -> str:
    """``entries(kind, where)`` as aligned ``name  description`` lines, for the terminal."""
    items = entries(kind, where)
    width = max(map(len, items), default=0)
    return "\n".join(f"{name:<{width}}  {text}".rstrip() for name, text in items.items())
