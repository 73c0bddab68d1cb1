#!/usr/bin/env python
"""Open pages of the built HTML book in headless Chromium: screenshots, and checks on the rendered page.

    python .ci/browser_check.py [--html _build/html] [--out _build/screenshots] [--nbs nbs] [--pages P ...]

Pages are named by notebook stem (`03_kl` -> 03_kl.html, source nbs/03_kl.ipynb); the default is every page of
the book (every notebook of nbs/). The book folder is served by http.server on a free
local port; each page is loaded twice by Chromium (`--headless=new`, every host but 127.0.0.1 made
unresolvable, so nothing comes from a CDN): once with `--dump-dom` and a probe script that the server
appends to the page (it waits for MathJax's first typeset and records what the page shows), once
with `--screenshot` at the page's full height (<OUT>/<page>.png; a page taller than 32,000 px in parts,
<page>-part<k>.png). A page FAILS when it is missing, when
MathJax is loaded from a CDN or did not typeset its math (no `mjx-container`, a `.math` element left
untypeset, a MathJax error, raw `$$`/`\\(`/`\\[` TeX or an unrendered Markdown table in the visible prose), when an <img> does not load
over HTTP as a PNG/JPEG/SVG that the browser decodes or there are fewer figures than the notebook's
image outputs and markdown images, when nbdev `#|` directive text, the source of a `#| hide`/`#| echo:
false` cell, a traceback or an error output is visible, and when at 1280 px the page scrolls sideways, the article
overflows its column, or a table wider than the article is clipped instead of scrolling. One line per page, exit 1 if any page fails.
Chromium: $CHROMIUM, else the first of chromium, google-chrome, google-chrome-stable, chromium-browser
on PATH that answers `--version`. Standard library only.
"""
from __future__ import annotations
import argparse, base64, functools, html.parser, http.server, json, os, re, shutil, struct, subprocess
import sys, tempfile, threading, time, urllib.error, urllib.parse, urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
def all_pages(nbs: Path) -> list[str]:
    "Every page of the book: the stems of nbs/*.ipynb (names starting with _ or . excluded), index first."
    stems = sorted(p.stem for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", ".")))
    return ["index"] + [s for s in stems if s != "index"]
WIDTH, MAX_HEIGHT, BUDGET_MS = 1280, 32000, 20000
PROBE = """<script>(function(){
function done(state){
  var q = function(s){ return Array.prototype.slice.call(document.querySelectorAll(s)); };
  var prose = [], w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), n;
  while ((n = w.nextNode())) { var e = n.parentElement;   // visible text outside code and typeset math
    if (e && !e.closest('pre,code,script,style,textarea,mjx-container') && e.checkVisibility()) prose.push(n.nodeValue); }
  var r = {mathjax: state, height: Math.max(document.documentElement.scrollHeight, document.body.scrollHeight),
    mjx: q('mjx-container').length, merror: q('mjx-merror').length,
    untypeset: q('.math').filter(function(e){ return !e.querySelector('mjx-container'); }).length,
    imgs: q('img').map(function(i){ return {src: i.getAttribute('src') || '', url: i.currentSrc || i.src,
                                            decoded: i.complete && i.naturalWidth > 0}; }),
    outputs: q('.output.traceback, .output.error, .output.stderr, .system-message').map(function(e){
      return {cls: e.className, text: e.innerText.slice(0, 300)}; }),
    text: document.body.innerText, prose: prose.join(' '),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    article: (function(a){ return a ? a.scrollWidth - a.clientWidth : 0; })(document.querySelector('.bd-article')),
    clipped: q('.bd-article table').filter(function(t){ var o = getComputedStyle(t).overflowX;
      return t.scrollWidth > t.clientWidth + 1 && o !== 'auto' && o !== 'scroll'; }).map(function(t){
      return (t.innerText || '').slice(0, 60); })};
  var p = document.createElement('script'); p.type = 'application/json'; p.id = 'bc-probe';
  p.textContent = JSON.stringify(r).replace(/</g, '\\\\u003c'); document.body.appendChild(p);
}
addEventListener('load', function(){
  var mj = window.MathJax && MathJax.startup && MathJax.startup.promise, t = setTimeout(function(){ done('timeout'); }, 15000);
  (mj ? mj.then(function(){ return 'done'; }, function(e){ return 'error: ' + e; }) : Promise.resolve('absent'))
    .then(function(s){ clearTimeout(t); done(s); });
});})();</script>"""


class Handler(http.server.SimpleHTTPRequestHandler):
    "Serves the book; `page.html?bc-probe` is the page with PROBE appended to its body, `?bc-scroll=Y` shifted up Y px."
    def do_GET(self):
        path, _, query = self.path.partition("?")
        f = Path(self.translate_path(path))
        if not (query == "bc-probe" or query.startswith("bc-scroll=")) or not f.is_file(): return super().do_GET()
        script = PROBE if query == "bc-probe" else (      # part k of a tall page: the page shifted up by Y px
            "<style>html { transform: translateY(-%dpx); }</style>" % int(query[10:]))
        body = f.read_text(encoding="utf-8")
        i = body.rfind("</body>")
        body = (body[:i] + script + body[i:] if i >= 0 else body + script).encode("utf-8")
        self.send_response(200); self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)

    def log_message(self, *args): pass


def find_chromium() -> str | None:
    names = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else ["chromium", "google-chrome", "google-chrome-stable", "chromium-browser"]
    for name in names:
        exe = shutil.which(name)
        try:
            if exe and subprocess.run([exe, "--version"], capture_output=True, timeout=60).returncode == 0: return exe
        except (OSError, subprocess.TimeoutExpired): pass
    return None


def chromium(exe: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="bc-chromium-") as profile:
        cmd = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
               "--force-device-scale-factor=1", f"--user-data-dir={profile}",
               "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",   # offline: CDNs do not resolve
               f"--virtual-time-budget={BUDGET_MS}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def fetch(url: str) -> tuple[int, bytes]:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        return 200, base64.b64decode(data) if head.endswith(";base64") else urllib.parse.unquote_to_bytes(data)
    try:
        with urllib.request.urlopen(url, timeout=30) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, b""
    except (urllib.error.URLError, OSError) as e: return 0, str(e).encode()


def image_kind(b: bytes) -> str | None:
    "png/jpeg/svg when bytes `b` are such an image with a nonzero size, else None."
    if b[:8] == b"\x89PNG\r\n\x1a\n" and len(b) > 24 and all(struct.unpack(">II", b[16:24])): return "png"
    if b[:3] == b"\xff\xd8\xff" and len(b) > 100: return "jpeg"
    if b"<svg" in b[:4096]:
        try: return "svg" if ET.fromstring(b).tag.rsplit("}", 1)[-1] == "svg" else None
        except ET.ParseError: return None
    return None


class Scripts(html.parser.HTMLParser):
    "The src of every <script> in a page."
    def __init__(self):
        super().__init__(); self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "script" and dict(attrs).get("src"): self.srcs.append(dict(attrs)["src"])


def notebook_facts(nb_path: Path) -> dict:
    "What the page should show: math?, #figures, and lines only found in hidden cells."
    facts = {"math": False, "figures": 0, "hidden_lines": []}
    if not nb_path.is_file(): return facts
    cells = json.loads(nb_path.read_text(encoding="utf-8"))["cells"]
    shown, hidden = [], []
    for c in cells:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if c["cell_type"] == "markdown":
            facts["math"] |= bool(re.search(r"\$[^$\n]+\$|\$\$|\\begin\{|\\\(|\\\[", src))
            facts["figures"] += len(re.findall(r"!\[[^\]]*\]\(|<img\s", src))
            shown.append(src); continue
        if c["cell_type"] != "code": continue
        dirs = {m.group(1).replace(" ", "").lower() for m in re.finditer(r"^\s*#\s*\|\s*(.*?)\s*$", src, re.M)}
        body = "\n".join(l for l in src.splitlines() if not re.match(r"\s*#\s*\|", l))
        no_cell, no_input = bool(dirs & {"hide", "include:false"}), bool(dirs & {"echo:false", "hide_input"})
        (hidden if no_cell or no_input else shown).append(body)
        outs = c.get("outputs", [])
        shown += ["".join(o.get("text", "")) + "".join("".join(v) for k, v in o.get("data", {}).items() if k.startswith("text/"))
                  for o in outs]
        if not (no_cell or dirs & {"output:false", "hide_output"}):
            facts["figures"] += sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outs)
    shown_text = "\n".join(shown)
    facts["hidden_lines"] = sorted({l.strip() for b in hidden for l in b.splitlines()
                                    if len(l.strip()) >= 16 and l.strip() not in shown_text})
    return facts


def check_page(exe: str, base: str, name: str, nbs: Path, out: Path) -> tuple[list[str], int, str, str]:
    "(failures, #equations typeset, figures 'ok/expected', screenshot path) of one page."
    url, fails = f"{base}/{name}.html", []
    status, raw = fetch(url)
    if status != 200:
        return [f"page missing: {url} answers HTTP {status} (is nbs/{name}.ipynb in the book?)"], 0, "0/?", "-"
    facts = notebook_facts(nbs / f"{name}.ipynb")
    page_html = raw.decode("utf-8", "replace")
    has_math = facts["math"] or bool(re.search(r'class="[^"]*\bmath\b', page_html))
    p = Scripts(); p.feed(page_html)
    mj_srcs = [s for s in p.srcs if "mathjax" in s.lower()]
    for s in mj_srcs:
        if re.match(r"^([a-z][a-z0-9+.-]*:|//)", s, re.I): fails.append(f"MathJax is loaded from a CDN, not locally: {s}")
        elif fetch(urllib.parse.urljoin(url, s))[0] != 200: fails.append(f"local MathJax script {s} is not served (HTTP != 200)")
    if has_math and not mj_srcs: fails.append("page has math but no MathJax <script>")

    r = chromium(exe, "--window-size=%d,1000" % WIDTH, "--dump-dom", url + "?bc-probe")
    m = re.search(r'<script type="application/json" id="bc-probe">(.*?)</script>', r.stdout, re.S)
    if not m:
        return fails + [f"no probe result in the DOM (chromium exit {r.returncode}): {r.stderr.strip()[-300:]}"], 0, "0/?", "-"
    probe = json.loads(m.group(1))
    if has_math:
        if probe["mathjax"] != "done": fails.append(f"MathJax did not finish typesetting: {probe['mathjax']}")
        if probe["mjx"] == 0: fails.append("math in the source but no typeset equation (mjx-container) on the page")
        if probe["untypeset"]: fails.append(f"{probe['untypeset']} math elements left untypeset")
    if probe["merror"]: fails.append(f"{probe['merror']} MathJax TeX errors (mjx-merror)")
    tex = re.findall(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{\w+\}|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$", probe["prose"])
    if tex: fails.append(f"raw TeX visible in the text: {sorted(set(tex))[:5]}")
    rows = re.findall(r"\|\s*:?-{3,}:?\s*\|", probe["prose"])
    if rows: fails.append(f"an unrendered Markdown table in the text ({rows[0]!r}): Markdown outputs need MyST rendering")

    n_ok = 0
    for img in probe["imgs"]:
        status, data = fetch(img["url"]) if img["url"].startswith((base, "data:")) else (0, b"not served by the book")
        kind = image_kind(data) if status == 200 else None
        if status != 200: fails.append(f"figure {img['src'][:80]}: HTTP {status or data[:80].decode('utf-8', 'replace')}")
        elif not kind: fails.append(f"figure {img['src'][:80]}: not a PNG/JPEG/SVG with a size ({len(data)} bytes)")
        elif not img["decoded"]: fails.append(f"figure {img['src'][:80]}: the browser could not show it")
        else: n_ok += 1
    if n_ok < facts["figures"]:
        fails.append(f"{n_ok} figures shown, nbs/{name}.ipynb has {facts['figures']} (image outputs + markdown images)")

    text = probe["text"]
    leaked = [l.strip() for l in text.splitlines() if re.match(r"\s*#\s*\|\s*\w", l)]
    if leaked: fails.append(f"nbdev directives visible: {leaked[:3]}")
    shown_hidden = [l for l in facts["hidden_lines"] if l in text]
    if shown_hidden: fails.append(f"hidden-cell source visible ({len(shown_hidden)} lines): {shown_hidden[0][:80]!r}")
    if "Traceback (most recent call last)" in text or re.search(r"['\"]ename['\"]\s*:", text):
        fails.append("a traceback / error output is visible")
    for o in probe["outputs"]:
        if "stderr" in o["cls"].split() and not re.search(r"\w*(Error|Exception)\b", o["text"]): continue
        fails.append(f"error output shown ({o['cls']}): {o['text'].strip().splitlines()[0][:100] if o['text'].strip() else ''!r}")

    if probe["overflow"] > 1: fails.append(f"the page scrolls sideways at {WIDTH} px ({probe['overflow']} px too wide)")
    if probe["article"] > 1: fails.append(f"the article overflows its column by {probe['article']} px")
    for t in probe["clipped"]: fails.append(f"a table wider than the article is clipped, not scrollable: {t!r}")

    total = int(probe["height"]) + 40                   # pages taller than MAX_HEIGHT: screenshots in parts
    parts = max(1, -(-total // MAX_HEIGHT))
    shots = []
    for k in range(parts):
        shot = out / (f"{name}.png" if parts == 1 else f"{name}-part{k + 1}.png")
        height = max(600, min(MAX_HEIGHT, total - k * MAX_HEIGHT))
        shot.unlink(missing_ok=True)
        r = chromium(exe, f"--window-size={WIDTH},{height}", f"--screenshot={shot}",
                     url if k == 0 else f"{url}?bc-scroll={k * MAX_HEIGHT}")
        if not shot.is_file() or shot.stat().st_size == 0:
            fails.append(f"no screenshot {shot.name} (chromium exit {r.returncode}): {r.stderr.strip()[-300:]}")
        shots.append(str(shot))
    return fails, probe["mjx"], f"{n_ok}/{facts['figures']}", shots[0] + (f" (+{parts - 1} parts)" if parts > 1 else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--html", default=str(ROOT / "_build" / "html"), help="the built book (default: _build/html)")
    ap.add_argument("--out", default=str(ROOT / "_build" / "screenshots"), help="screenshot folder (default: _build/screenshots)")
    ap.add_argument("--nbs", default=str(ROOT / "nbs"), help="the notebooks the pages come from (default: nbs)")
    ap.add_argument("--pages", nargs="+", help="page names (notebook stems); default: every notebook of nbs/")
    args = ap.parse_args(argv)
    args.pages = args.pages or all_pages(Path(args.nbs))
    t0 = time.time()
    exe = find_chromium()
    if not exe:
        print("FAIL: no Chromium/Chrome found (set CHROMIUM=/path/to/chrome, or install chromium)", file=sys.stderr)
        return 1
    html_dir, out = Path(args.html).resolve(), Path(args.out).resolve()
    if not (html_dir / "index.html").is_file():
        print(f"FAIL: {html_dir}/index.html does not exist: build the book first (python .ci/nbtools.py book)", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(html_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"browser check: {version} ({exe}); book {html_dir} at {base}; screenshots in {out}")
    n_fail = 0
    try:
        for name in args.pages:
            name = name.removesuffix(".html").removesuffix(".ipynb")
            try:
                fails, n_eq, figs, shot = check_page(exe, base, name, Path(args.nbs), out)
            except Exception as e:   # a crash on one page is that page's failure
                fails, n_eq, figs, shot = [f"check crashed: {type(e).__name__}: {e}"], 0, "0/?", "-"
            n_fail += bool(fails)
            print(f"{name:<20} equations {n_eq:4d}  figures {figs:>5}  {shot}  {'FAIL' if fails else 'PASS'}")
            for f in fails: print(f"    FAIL {name}: {f}")
    finally:
        server.shutdown()
    print(f"browser check: {len(args.pages) - n_fail} pages passed, {n_fail} failed ({time.time() - t0:.0f} s)")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
