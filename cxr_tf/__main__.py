"""``python -m cxr_tf``: the list of commands; ``python -m cxr_tf VERB ...`` runs ``python -m cxr_tf.VERB ...``.

Examples:
    python -m cxr_tf                        # the verbs, in the order of the data flow
    python -m cxr_tf list models            # also: datasets, recipes, losses
    python -m cxr_tf fit --recipe demo_phantoms --records runs/demo/records
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from cxr_tf import cli, listing
from cxr_tf.registry import check_name

# In the order a user meets them: data -> records -> training -> evaluation -> serving; then the demo.
VERBS = ("synth", "manifest", "build_records", "lr_find", "fit", "evaluate", "explain", "report", "export",
         "predict", "demo")


def _summary(verb: str) -> str:
    """What ``verb`` does: the first paragraph of its module docstring, after ``python -m cxr_tf.VERB:``."""
    doc = importlib.import_module(f"cxr_tf.{verb}").__doc__ or ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return first.partition(": ")[2].replace("``", "")


def usage() -> str:
    """The verbs with one line each, and how to run them."""
    rows = {verb: _summary(verb) for verb in VERBS}
    rows["list KIND"] = f"print what a flag can name; KIND: {', '.join(listing.KINDS)}"
    width = max(map(len, rows))
    return "\n".join([
        "usage: python -m cxr_tf VERB [FLAGS]   (the same as python -m cxr_tf.VERB [FLAGS])",
        "",
        "verbs:",
        *(f"  {verb:<{width}}  {text}" for verb, text in rows.items()),
        "",
        "python -m cxr_tf VERB --help shows a verb's flags and their defaults; --version the version.",
    ])


def list_main(argv: Sequence[str]) -> int:
    """``python -m cxr_tf list KIND``: the same listing as a command's ``--list-KIND`` flag."""
    parser = cli.ArgumentParser(prog="python -m cxr_tf list", description="Print what a flag can name.")
    parser.add_argument("kind", metavar="{" + ",".join(listing.KINDS) + "}", help="what to list")
    print(listing.format_entries(parser.parse_args(list(argv)).kind, parser.prog))
    return 0


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in VERBS:
        return importlib.import_module(f"cxr_tf.{argv[0]}").main(argv[1:]) or 0
    if argv and argv[0] == "list":
        return list_main(argv[1:])
    parser = cli.ArgumentParser(prog="python -m cxr_tf", add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    _, rest = parser.parse_known_args(list(argv))
    if rest:
        check_name("verb", rest[0], [*VERBS, "list"], parser.prog)
    print(usage())
    return 0


def console() -> None:
    sys.exit(cli.run(main))


if __name__ == "__main__":
    console()
