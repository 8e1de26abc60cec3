"""Rebuild the largest English corpus this machine can assemble offline, into data/corpora/.

Sources are gensim's bundled test corpora and Debian packages fetched with `apt-get download`
(the only network used: the package registry). Every source becomes one plain-text file of one
paragraph per line under data/corpora/parts/; the chosen ones are concatenated into
data/corpora/english.txt, and a table of alphabetic tokens per source is printed.

Usage (from the repository root, with the project's virtual environment):
    .venv/bin/python recipes/build_corpus.py                # prose sources -> english.txt
    .venv/bin/python recipes/build_corpus.py --technical    # + software manuals -> english-all.txt
If `apt-get download` says a package cannot be found, run `apt-get update` first.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import html.parser
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

WORD = re.compile(r"[^\W\d_]+")  # alphabetic tokens, as gensim.utils.tokenize counts them
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "data" / "corpora"


@dataclass
class Source:
    name: str
    kind: str  # encyclopedia, news, dictionary, religious, quotations, technical
    package: str | None  # Debian package, or None for gensim's bundled data
    extract: Callable[[Path], Iterator[str]]  # unpacked package root -> paragraphs
    technical: bool = False


# ------------------------------------------------------------------------- helpers


def paragraphs(text: str) -> Iterator[str]:
    """Blank-line separated paragraphs, each joined onto one line."""
    for block in re.split(r"\n\s*\n", text):
        line = " ".join(block.split())
        if line:
            yield line


def mostly_words(line: str, share: float = 0.6) -> bool:
    """Keep prose, drop code and tables: most whitespace-separated pieces must be words."""
    pieces = line.split()
    words = sum(1 for piece in pieces if re.fullmatch(r"[\"'(]*[^\W\d_]+[\"').,;:!?]*", piece))
    return len(pieces) >= 4 and words >= share * len(pieces)


_URL = re.compile(r"\S+://\S+|\S+@\S+\.\w+")


# ------------------------------------------------------------------------- dictd dictionaries

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _dictd_number(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64.index(char)
    return value


def dictd_entries(root: Path, name: str) -> Iterator[str]:
    """Entries of /usr/share/dictd/NAME.dict.dz (dictzip is gzip), located through NAME.index,
    without the 00-database-* entries (licence and metadata)."""
    data = gzip.decompress((root / f"usr/share/dictd/{name}.dict.dz").read_bytes())
    seen = set()
    index = (root / f"usr/share/dictd/{name}.index").read_text(encoding="utf-8", errors="replace")
    for line in index.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or fields[0].startswith("00-database") or fields[0].startswith("00database"):
            continue
        offset, length = _dictd_number(fields[1]), _dictd_number(fields[2])
        if offset in seen:
            continue
        seen.add(offset)
        yield data[offset:offset + length].decode("utf-8", errors="replace")


def gcide(root: Path) -> Iterator[str]:
    for entry in dictd_entries(root, "gcide"):
        entry = re.sub(r"\\[^\\\n]*\\", " ", entry)  # pronunciation \Af*fect"\
        entry = re.sub(r"\[[^\]]*\]", " ", entry)  # [1913 Webster], etymologies
        entry = re.sub(r"--\s*[A-Z][\w. ]*\.", " ", entry)  # --Milton. citations
        yield from paragraphs(entry.replace("{", "").replace("}", ""))


def wordnet(root: Path) -> Iterator[str]:
    for entry in dictd_entries(root, "wn"):
        entry = re.sub(r"\[(syn|ant|also|see)[^\]]*\]", " ", entry, flags=re.S)
        entry = re.sub(r"\b(n|v|adj|adv)\s+\d+:|\n\s*\d+:", "\n\n", entry)
        lines = entry.replace("{", "").replace("}", "").split("\n", 1)
        if len(lines) == 2:  # drop the headword line
            yield from paragraphs(lines[1])


def dictd_plain(name: str) -> Callable[[Path], Iterator[str]]:
    def extract(root: Path) -> Iterator[str]:
        for entry in dictd_entries(root, name):
            entry = _URL.sub(" ", entry)
            entry = re.sub(r"<[a-z ]+>|\(\d{4}-\d\d-\d\d\)", " ", entry)  # FOLDOC's <topic>, dates
            entry = entry.replace("{", "").replace("}", "")
            lines = entry.split("\n", 1)
            if len(lines) == 2:
                yield from paragraphs(lines[1])
    return extract


# ------------------------------------------------------------------------- SWORD modules

_BREAK_TAGS = re.compile(r"<(?:/?p|div|chapter|verse|title|lb|/title|/l|l|row)\b[^>]*>")


def sword(module_dir: str) -> Callable[[Path], Iterator[str]]:
    """zText / zCom modules: a 12-byte index (offset, size, uncompressed size) of zlib blocks of
    OSIS XML; footnotes and tags are dropped, paragraph-like tags become line breaks."""
    def extract(root: Path) -> Iterator[str]:
        folder = root / "usr/share/sword/modules" / module_dir
        for index in sorted(folder.glob("*.?zs")):
            data = index.with_suffix(index.suffix[:-1] + "z").read_bytes()
            for offset, size, _ in struct.iter_unpack("<III", index.read_bytes()):
                if size == 0:
                    continue
                text = zlib.decompress(data[offset:offset + size]).decode("utf-8", errors="replace")
                text = re.sub(r"<note\b.*?</note>", " ", text, flags=re.S)
                text = _BREAK_TAGS.sub("\n\n", text)
                text = re.sub(r"<[^>]*>", " ", text)
                text = html.unescape(text) if "&" in text else text
                yield from paragraphs(text)
    return extract


# ------------------------------------------------------------------------- others


def fortunes(root: Path) -> Iterator[str]:
    for path in sorted((root / "usr/share/games/fortunes").iterdir()):
        if path.suffix or not path.is_file():  # .dat indexes, .u8 links
            continue
        for cookie in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            line = " ".join(cookie.split())
            if line:
                yield line


def python_info(root: Path) -> Iterator[str]:
    text = gzip.decompress(next((root / "usr/share/info").glob("python3*.info.gz")).read_bytes())
    text = text.decode("utf-8", errors="replace")
    text = re.sub(r"\*note ([^:]*)::?[^.,)]*", r"\1", text)
    for line in paragraphs(_URL.sub(" ", text)):
        if mostly_words(line):
            yield line


def perl_pod(root: Path) -> Iterator[str]:
    for path in sorted((root / "usr/share/perl").glob("*/pod/*.pod")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for block in re.split(r"\n\s*\n", text):
            if not block or block[0].isspace() or block.startswith("="):  # code, commands
                continue
            block = re.sub(r"[A-Z]<+\s*([^<>]*?)\s*>+", r"\1", block)
            line = " ".join(_URL.sub(" ", block).split())
            if mostly_words(line):
                yield line


class _HtmlProse(html.parser.HTMLParser):
    """Text of <p>, <li> and <dd> elements, outside <pre> and <code> blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.skip, self.parts, self.found = 0, 0, [], []

    def handle_starttag(self, tag, attrs):
        if tag in ("pre", "script", "style"):
            self.skip += 1
        elif tag in ("p", "li", "dd"):
            if self.depth == 0:
                self.parts = []
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in ("pre", "script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in ("p", "li", "dd") and self.depth:
            self.depth -= 1
            if self.depth == 0:
                self.found.append(" ".join("".join(self.parts).split()))

    def handle_data(self, data):
        if self.depth and not self.skip:
            self.parts.append(data)


def linux_docs(root: Path) -> Iterator[str]:
    for path in sorted((root / "usr/share/doc").glob("linux-doc-*/html/**/*.html")):
        if path.name in ("genindex.html", "search.html"):
            continue
        parser = _HtmlProse()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        for line in parser.found:
            if mostly_words(line):
                yield line


def gensim_wiki_sample(_: Path) -> Iterator[str]:
    """gensim's bundled English Wikipedia sample (the demo corpus), markup removed."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    path = datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    with bz2.open(path, "rb") as dump:
        for _title, text, _pageid in extract_pages(dump):
            if text and not text.lstrip().lower().startswith("#redirect"):
                yield from paragraphs(filter_wiki(text))


def gensim_lee_news(_: Path) -> Iterator[str]:
    """gensim's Lee background corpus: 300 news articles of the Australian Broadcasting Corp."""
    from gensim.test.utils import datapath

    with open(datapath("lee_background.cor"), encoding="utf-8", errors="replace") as handle:
        yield from (line.strip() for line in handle if line.strip())


SOURCES = [
    Source("enwiki-sample", "encyclopedia", None, gensim_wiki_sample),
    Source("lee-news", "news", None, gensim_lee_news),
    Source("gcide", "dictionary (Webster 1913 + WordNet)", "dict-gcide", gcide),
    Source("wordnet", "dictionary glosses", "dict-wn", wordnet),
    Source("foldoc", "computing dictionary", "dict-foldoc", dictd_plain("foldoc")),
    Source("jargon", "hacker lexicon", "dict-jargon", dictd_plain("jargon")),
    Source("devil", "satirical dictionary (Bierce)", "dict-devil", dictd_plain("devil")),
    Source("web-bible", "religious (World English Bible)", "sword-text-web",
           sword("texts/ztext/engWEB2015eb")),
    Source("mhcc", "religious commentary (M. Henry)", "sword-comm-mhcc", sword("comments/zcom/mhcc")),
    Source("tdavid", "religious commentary (Spurgeon)", "sword-comm-tdavid", sword("comments/zcom/tdavid")),
    Source("fortunes", "quotations", "fortunes", fortunes),
    Source("python-docs", "software manual", "python3.11-doc", python_info, technical=True),
    Source("perl-docs", "software manual", "perl-doc", perl_pod, technical=True),
    Source("linux-docs", "software manual", "linux-doc-6.1", linux_docs, technical=True),
]


# ------------------------------------------------------------------------- build


def download(package: str, downloads: Path) -> Path:
    existing = sorted(downloads.glob(f"{package}_*.deb"))
    if existing:
        return existing[-1]
    done = subprocess.run(["apt-get", "download", package], cwd=downloads, capture_output=True, text=True)
    found = sorted(downloads.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        raise SystemExit(f"apt-get download {package} failed (run apt-get update first?): {last}")
    return found[-1]


def build_source(source: Source, out: Path) -> tuple[int, int, str]:
    """Write parts/NAME.txt; return (lines, tokens, version)."""
    target = out / "parts" / f"{source.name}.txt"
    version = "gensim test data"
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        root = Path(scratch)
        if source.package is not None:
            deb = download(source.package, out / "downloads")
            version = deb.name.split("_")[1].replace("%3a", ":")
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        lines = tokens = 0
        partial = target.with_suffix(".txt.tmp")
        with open(partial, "w", encoding="utf-8") as handle:
            for line in source.extract(root):
                count = len(WORD.findall(line))
                if count == 0:
                    continue
                handle.write(line + "\n")
                lines, tokens = lines + 1, tokens + count
        partial.replace(target)
    return lines, tokens, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--technical", action="store_true",
                        help="also build software manuals and write english-all.txt")
    args = parser.parse_args()
    for folder in (args.out, args.out / "parts", args.out / "downloads"):
        folder.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SOURCES if args.technical or not s.technical]
    rows = []
    for source in chosen:
        lines, tokens, version = build_source(source, args.out)
        rows.append((source, lines, tokens, version))
        print(f"  built {source.name}: {tokens:,} tokens", flush=True)
    corpora = {"english.txt": [r for r in rows if not r[0].technical]}
    if args.technical:
        corpora["english-all.txt"] = rows
    for name, members in corpora.items():
        with open(args.out / f"{name}.tmp", "wb") as combined:
            for source, *_ in members:
                with open(args.out / "parts" / f"{source.name}.txt", "rb") as part:
                    shutil.copyfileobj(part, combined)
        (args.out / f"{name}.tmp").replace(args.out / name)
    table = [f"{'source':<14} {'kind':<36} {'package (version)':<40} {'lines':>9} {'tokens':>12}"]
    for source, lines, tokens, version in rows:
        package = f"{source.package} ({version})" if source.package else version
        table.append(f"{source.name:<14} {source.kind:<36} {package:<40} {lines:>9,} {tokens:>12,}")
    for name, members in corpora.items():
        table.append(f"{name:<14} {'total':<36} {'':<40} {sum(r[1] for r in members):>9,} "
                     f"{sum(r[2] for r in members):>12,}")
    (args.out / "SOURCES.txt").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
