"""The README and docs/: every relative link reaches a file, and every #anchor a heading there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCED = re.compile(r"```.*?```", flags=re.S)


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped but '-' and
    '_', spaces as '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings(path: Path) -> set[str]:
    text = FENCED.sub("", path.read_text())
    return {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_github_anchor_follows_githubs_rule() -> None:
    assert github_anchor("Transfer: can Tiny ImageNet borrow CIFAR-10's ranking?") == (
        "transfer-can-tiny-imagenet-borrow-cifar-10s-ranking")
    assert github_anchor("The measured source (`xpert_evo/training/source.py`)") == (
        "the-measured-source-xpert_evotrainingsourcepy")


def test_every_relative_link_and_anchor_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", FENCED.sub("", page.read_text())):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in headings(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert len(pages) > 5 and not broken, broken
