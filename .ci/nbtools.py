#!/usr/bin/env python
"""README.md and the HTML book from the notebooks in nbs/, offline and without quarto.

    python .ci/nbtools.py readme [--check]       # README.md from nbs/index.ipynb
    python .ci/nbtools.py book [--out DIR] [--mathjax DIR]   # jupyter-book 1.x -> _build/html

nbdev 2's own `nbdev_readme` / `nbdev_docs` need quarto. Here a processed copy of each notebook is made
instead: nbdev directives become the cell tags that nbconvert and myst-nb understand (`#| hide` ->
`remove-cell`, `#| echo: false` -> `remove-input`, `#| output: false` -> `remove-output`), the `#|`
lines are stripped, and the copy is rendered with nbconvert (README) or jupyter-book (book).
Needs only the standard library, nbformat, nbconvert and jupyter-book (the `[dev]` extra).
"""
from __future__ import annotations
import argparse, configparser, copy, json, re, shutil, subprocess, sys, time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
README = ROOT / "README.md"
PROC = ROOT / "_proc"
BUILD_HTML = ROOT / "_build" / "html"

# ---------------------------------------------------------------- directives -> tags
_re_directive = re.compile(r"^\s*#\s*\|\s*(.*?)\s*$")
_re_hide_line = re.compile(r"#\s*\|\s*hide_line\s*$")
_re_ansi = re.compile(r"\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")
_re_target = re.compile(r"\{\s*target=\"_blank\"[^}]*\}")
_re_showdoc = re.compile(r"^show_doc\b", re.MULTILINE)

# directive (lower-cased, spaces removed) -> tag
_TAGS = {
    "hide": "remove-cell", "include:false": "remove-cell",
    "echo:false": "remove-input", "hide_input": "remove-input",
    "output:false": "remove-output", "hide_output": "remove-output",
}


def _directives(src: str) -> list[str]:
    "nbdev directives (`#| ...` lines) of a code cell, normalized: lower case, no spaces."
    return [m.group(1).replace(" ", "").lower() for l in src.splitlines() if (m := _re_directive.match(l))]


def _add_tag(cell, tag):
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag not in tags: tags.append(tag)


def _sanitize_md_output(text: str) -> str:
    "Stored `show_doc` markdown: drop `---` rules (docutils reads them as transitions/front matter) and quarto link attributes."
    lines = [l for l in text.splitlines() if l.strip() != "---"]
    return _re_target.sub("", "\n".join(lines)).strip("\n") + "\n"


def _front_matter_title(cell) -> str | None:
    "A quarto-style raw front-matter cell (`---\\ntitle: ...\\n---`) as an H1 + summary (jupyter-book needs an H1)."
    src = cell.source.strip()
    if not (src.startswith("---") and src.endswith("---")): return None
    fields = dict(re.findall(r"^(\w+):\s*(.+?)\s*$", src, flags=re.MULTILINE))
    if "title" not in fields: return None
    md = f"# {fields['title'].strip(chr(34) + chr(39))}"
    if "description" in fields: md += f"\n\n> {fields['description'].strip(chr(34) + chr(39))}"
    return md


_re_chapter_ref = re.compile(r"\b([Cc]hapter) (\d\d[a-z]?)\b")
_re_code_or_link = re.compile(r"(`[^`]*`|\[[^\]]*\]\([^)]*\)|\$[^$]*\$)")
_re_index_row = re.compile(r"^\| (\d\d[a-z]?) ([^|]+?) \|", re.MULTILINE)
_re_housekeeping = re.compile(r"^\s*(torch\.set_num_threads\([^)]*\)\s*(#.*)?|#.*)?$")


def chapter_stems() -> dict[str, str]:
    "Chapter number ('04', '04a') -> notebook stem ('04_models'), for the notebooks of the book."
    return {m.group(1): p.stem for p in book_notebooks() if (m := re.match(r"(\d\d[a-z]?)_", p.name))}


def _link_chapters(text: str, chapters: dict[str, str]) -> str:
    "Markdown `text` with every 'chapter NN' outside code, math, links and headings linked to that chapter's page."
    def link_part(part):
        if _re_code_or_link.fullmatch(part): return part
        return _re_chapter_ref.sub(lambda m: f"[{m.group(1)} {m.group(2)}]({chapters[m.group(2)]}.ipynb)"
                                   if m.group(2) in chapters else m.group(0), part)
    out = []
    for line in text.split("\n"):
        if line.lstrip().startswith("#"): out.append(line); continue
        out.append("".join(link_part(p) for p in _re_code_or_link.split(line)))
    text = "\n".join(out)
    return _re_index_row.sub(lambda m: f"| [{m.group(1)} {m.group(2)}]({chapters[m.group(1)]}.ipynb) |"
                             if m.group(1) in chapters else m.group(0), text)


def process_nb(nb, stem: str | None = None, chapters: dict[str, str] | None = None):
    "A copy of notebook `nb` with nbdev directives turned into cell tags and `#|` lines stripped; for the book (with\n"
    "`stem` and `chapters`): the title numbered as the text numbers chapters, 'chapter NN' linked, housekeeping hidden."
    nb = copy.deepcopy(nb)
    cells = []
    number = m.group(1) if stem and (m := re.match(r"(\d\d[a-z]?)_", stem)) else None
    titled = False
    for cell in nb.cells:
        if cell.cell_type == "raw":
            title = _front_matter_title(cell)
            if title: cells.append(nbformat.v4.new_markdown_cell(title))
            continue                                   # other raw cells are not rendered by either route
        if cell.cell_type == "markdown":
            src = cell.source.strip()
            if src.startswith("#") and src.endswith(" -") and "\n" not in src: continue   # nbdev: a heading cell ending in " -" is hidden
            if number and not titled and cell.source.startswith("# "):       # the sidebar: "04 · Models"
                cell.source, titled = f"# {number} · {cell.source[2:]}", True
            if chapters: cell.source = _link_chapters(cell.source, chapters)
            cells.append(cell); continue
        # code cell
        dirs = _directives(cell.source)
        for d in dirs:
            if d in _TAGS: _add_tag(cell, _TAGS[d])
        lines = [l for l in cell.source.splitlines() if not _re_directive.match(l) and not _re_hide_line.search(l)]
        cell.source = "\n".join(lines).strip("\n")
        if _re_showdoc.search(cell.source): _add_tag(cell, "remove-input")    # as nbdev's clean_show_doc
        if "remove-cell" in cell.metadata.get("tags", []): continue
        if not cell.source.strip() and not cell.get("outputs"): continue   # e.g. a `#| default_exp` cell
        if chapters and cell.source.strip() and not cell.get("outputs") and all(
                _re_housekeeping.match(l) for l in cell.source.splitlines()): continue   # e.g. torch.set_num_threads(1)
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = _re_ansi.sub("", "".join(out["text"]) if isinstance(out["text"], list) else out["text"])
            data = out.get("data", {})
            if "text/markdown" in data:
                md = data["text/markdown"]
                data["text/markdown"] = _sanitize_md_output("".join(md) if isinstance(md, list) else md)
        cells.append(cell)
    nb.cells = cells
    md = nb.setdefault("metadata", {})
    md.setdefault("kernelspec", {"display_name": "python3", "language": "python", "name": "python3"})
    md.setdefault("language_info", {"name": "python", "pygments_lexer": "ipython3"})
    return nb


def read_nb(path: Path):
    return nbformat.read(str(path), as_version=4)


# ---------------------------------------------------------------- README
def render_readme() -> str:
    "Markdown for README.md from nbs/index.ipynb."
    from traitlets.config import Config
    from nbconvert import MarkdownExporter
    src = NBS / "index.ipynb"
    nb = process_nb(read_nb(src))
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = ("remove-cell",)
    c.TagRemovePreprocessor.remove_input_tags = ("remove-input",)
    c.TagRemovePreprocessor.remove_all_outputs_tags = ("remove-output",)
    body, res = MarkdownExporter(config=c).from_notebook_node(nb, resources={"output_files_dir": "README_files"})
    if res.get("outputs"):
        sys.exit("nbtools readme: nbs/index.ipynb has image outputs; README.md supports text outputs only")
    body = re.sub(r"\n{3,}", "\n\n", body).strip() + "\n"
    body = re.sub(r"\]\((images/[^)\s]+)\)", r"](nbs/\1)", body)   # images next to the notebooks, seen from the root
    header = "<!-- generated from nbs/index.ipynb by `python .ci/nbtools.py readme`: edit the notebook, not this file -->\n\n"
    readme = header + body
    leaked = [l for l in readme.splitlines() if _re_directive.match(l)]
    if leaked: sys.exit(f"nbtools readme: directive lines leaked into README.md: {leaked[:3]}")
    return readme


def cmd_readme(args) -> int:
    new = render_readme()
    if args.check:
        old = README.read_text(encoding="utf-8") if README.exists() else ""
        if old != new:
            import difflib
            diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "README.md", "README.md (from nbs/index.ipynb)", n=1))
            print(diff[:4000].rstrip("\n") + ("\n..." if len(diff) > 4000 else ""))
            print("README.md is out of date with nbs/index.ipynb: run `python .ci/nbtools.py readme`", file=sys.stderr)
            return 1
        print("README.md is up to date with nbs/index.ipynb")
        return 0
    README.write_text(new, encoding="utf-8")
    print(f"wrote {README.relative_to(ROOT)} ({len(new.splitlines())} lines)")
    return 0


# ---------------------------------------------------------------- book
def book_notebooks() -> list[Path]:
    "index first, then every other nbs/*.ipynb sorted by name; names starting with `_` or `.` excluded."
    nbs = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith(("_", ".")))
    index = [p for p in nbs if p.name == "index.ipynb"]
    if not index: sys.exit("nbtools book: nbs/index.ipynb is missing")
    return index + [p for p in nbs if p.name != "index.ipynb"]


def _settings() -> dict:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return dict(cfg["DEFAULT"])


def _yaml_str(s: str) -> str: return json.dumps(s)   # a JSON string is a valid YAML scalar


def _find_mathjax(d: Path) -> tuple[Path, str] | None:
    "(es5 folder, entry script) of an npm `mathjax@3` package (or its es5 folder), or None."
    for es5 in (d / "es5", d):
        for entry in ("tex-chtml.js", "tex-svg.js"):
            if (es5 / entry).is_file(): return es5, entry
    return None


BOOK_CSS = """/* generated by .ci/nbtools.py book. Below 1600 px the on-page contents column gives its width to the
   article (at 1280 px the article was ~700 px wide: code cells and tables were cut); wide tables and code scroll
   inside the article, numbers stay on one line. */
.bd-page-width { max-width: 100%; }
@media (max-width: 1599px) {
  .bd-sidebar-secondary { display: none; }
  .bd-main .bd-content .bd-article-container { max-width: 100%; }
}
.bd-article table { display: block; max-width: 100%; overflow-x: auto; }
.bd-article table td, .bd-article table th { white-space: nowrap; }
.bd-article div.highlight pre, .bd-article .output pre { overflow-x: auto; }
"""


def write_book_source(mathjax: Path | None) -> list[str]:
    "Fill _proc/ with processed notebooks, _config.yml and _toc.yml; return the processed notebook names."
    if PROC.exists(): shutil.rmtree(PROC)
    PROC.mkdir()
    names = []
    chapters = chapter_stems()
    for p in book_notebooks():
        nb = process_nb(read_nb(p), p.stem, chapters)
        nbformat.write(nb, str(PROC / p.name))
        names.append(p.stem)
    if (NBS / "images").is_dir(): shutil.copytree(NBS / "images", PROC / "images")   # figures referenced from markdown
    s = _settings()
    sphinx_cfg = ["    myst_dmath_double_inline: true",
                  "    nb_render_markdown_format: myst   # display(Markdown(...)) outputs: MyST, so their tables and math render",
                  "    suppress_warnings: [\"myst.header\"]   # show_doc headings (###) may follow a ## heading"]
    if mathjax is not None:
        found = _find_mathjax(mathjax)
        if found is None: sys.exit(f"nbtools book: no es5/tex-chtml.js or es5/tex-svg.js under {mathjax} (want the npm `mathjax@3` package)")
        es5, entry = found
        shutil.copytree(es5, PROC / "_mathjax" / "mathjax")
        sphinx_cfg += [f"    mathjax_path: mathjax/{entry}"]
    (PROC / "_static").mkdir()
    (PROC / "_static" / "negbio.css").write_text(BOOK_CSS, encoding="utf-8")
    static = ["_static"] + (["_mathjax"] if mathjax is not None else [])
    sphinx_cfg += [f"    html_static_path: {json.dumps(static)}", '    html_css_files: ["negbio.css"]']
    git_url = s.get("git_url", "")
    config = f"""# generated by .ci/nbtools.py book: edit that script, not this file
title: {_yaml_str(s.get('title', s.get('lib_name', 'book')))}
author: {_yaml_str(s.get('author', ''))}
copyright: {_yaml_str(s.get('copyright', '').split(',')[0])}
only_build_toc_files: true
exclude_patterns: [_build, _mathjax, "**.ipynb_checkpoints"]
execute:
  execute_notebooks: "off"
parse:
  myst_enable_extensions: [amsmath, dollarmath, colon_fence, linkify]
repository:
  url: {_yaml_str(git_url)}
  branch: {_yaml_str(s.get('branch', 'main'))}
  path_to_book: nbs
html:
  use_repository_button: {'true' if git_url else 'false'}
sphinx:
  config:
""" + "\n".join(sphinx_cfg) + "\n"
    (PROC / "_config.yml").write_text(config, encoding="utf-8")
    toc = "# generated by .ci/nbtools.py book\nformat: jb-book\nroot: " + names[0] + "\n"
    if len(names) > 1: toc += "chapters:\n" + "".join(f"  - file: {n}\n" for n in names[1:])
    (PROC / "_toc.yml").write_text(toc, encoding="utf-8")
    return names


def cmd_book(args) -> int:
    t0 = time.time()
    mathjax = Path(args.mathjax).resolve() if args.mathjax else None
    names = write_book_source(mathjax)
    print(f"_proc/: {len(names)} notebooks ({', '.join(names)}); "
          + (f"MathJax from {mathjax}" if mathjax else "MathJax from its CDN (pass --mathjax DIR for offline math)"))
    if BUILD_HTML.exists(): shutil.rmtree(BUILD_HTML)
    jb = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.argv[0] = 'jupyter-book'; sys.exit(main())"]
    cmd = jb + ["build", str(PROC), "--path-output", str(ROOT), "--builder", "html", "-W", "--all"]
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0:
        print(f"nbtools book: jupyter-book build failed (exit {r.returncode})", file=sys.stderr)
        return r.returncode
    out = BUILD_HTML
    if args.out and Path(args.out).resolve() != BUILD_HTML.resolve():
        out = Path(args.out).resolve()
        if out.exists(): shutil.rmtree(out)
        shutil.copytree(BUILD_HTML, out)
    print(f"book: {out}/index.html ({time.time() - t0:.0f} s)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("readme", help="make README.md from nbs/index.ipynb")
    r.add_argument("--check", action="store_true", help="exit 1 if README.md differs from what would be generated")
    b = sub.add_parser("book", help="build the HTML book with jupyter-book 1.x into _build/html")
    b.add_argument("--out", help="copy the built HTML here (default: _build/html)")
    b.add_argument("--mathjax", help="an npm `mathjax@3` package folder (node_modules/mathjax) for offline math")
    args = ap.parse_args(argv)
    return {"readme": cmd_readme, "book": cmd_book}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
