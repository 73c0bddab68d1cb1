#!/usr/bin/env python
"""Mutation testing for the export cells of one notebook: do its tests catch plausible bugs?

    python .ci/mutate.py nbs/03_kl.ipynb [--max N] [--seed S] [--timeout 300] [--json out.json] [--list] [--cells ID,ID]

Each `#| export` / `#| exports` cell is parsed with `ast` and these mutants are enumerated:
binary operators `+ <-> -`, `* <-> /` (also in `+=` ...); numeric constants `c -> c+1`, `c -> 2c` (`0 -> 1`,
`1 -> 0`, `1 -> 2`); `.sum` <-> `.mean` calls; `-x -> x`; comparisons `< <-> <=`, `> <-> >=`; a boolean keyword
flipped (`unbiased=`, `keepdim=` ...); a keyword argument dropped; a parameter ignored (its uses replaced by its
default, up to and including the first statement that rebinds it); `log1p -> log`, `expm1 -> exp`.
Mutants inside docstrings, error messages, `raise` / `assert` statements, `if ...: raise` argument checks,
`_check*` / `check_*` / `require` / `_is_*` / `__post_init__` functions and plotting code (functions named `*plot*` or taking `ax`,
statements touching `ax`/`axes`/`plt`/`fig`)
are not generated. Up to `--max` mutants are drawn with `random.Random(seed)` from the sorted list (reproducible).

For each mutant a temporary copy of the notebook with that one cell mutated is written to a temp folder and run
in a subprocess with `nbdev.test.test_nb` (what `nbdev_test` runs per notebook): `#| slow` / `#| gpu` cells
(settings.ini `tst_flags`) are skipped, cells calling `nbdev_export(` are skipped, execution stops at the first
error. Only the working directory differs: it is the original notebook's folder (so relative paths resolve as
in `nbdev_test`), not the temp folder. A mutant is KILLED if the run fails, TIMEOUT if it exceeds `--timeout`
(counted as killed in the kill rate, as is usual), SURVIVED if the notebook passes.

How the tests exercise the mutant (and not the installed `negbio_vae/*.py`): the test executes the mutated
export cell itself, so its functions/classes/constants are redefined in the notebook namespace, and every later
cell, and every function of the notebook that calls another by its bare name, uses the mutated code. In addition
a hidden cell inserted right after the mutated cell rebinds each name the cell defines on the notebook's module
(`negbio_vae.<default_exp>`) and on every already imported `negbio_vae.*` module that had imported the same
object (`from negbio_vae.X import name`), so that library code called from the notebook (e.g. a sampler from
another module calling back into this one) also runs the mutant. A module imported later gets the patched
attribute from the patched module. The unmutated notebook is run first; if it fails, nothing is measured.

Equivalent mutants (same behaviour as the original) exist; survivors are listed so that a human can judge.
The measurement is only as stable as the package the notebook imports from other modules: while others edit and
export other notebooks, run it in a frozen copy, e.g. `git archive HEAD | tar -x -C /tmp/t` (plus the notebook
under study) with `PYTHONPATH=/tmp/t`, so that before/after numbers see the same library.
Standard library + nbformat + nbdev/execnb only.
"""
from __future__ import annotations
import argparse, ast, json, os, random, re, subprocess, sys, tempfile, time
from dataclasses import dataclass, asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_re_export = re.compile(r"^\s*#\s*\|\s*exports?\b(.*)$", re.MULTILINE)
_re_default_exp = re.compile(r"^\s*#\s*\|\s*default_exp\s+(\S+)", re.MULTILINE)
_PLOT_WORDS = ("ax.", "axes", "plt.", "fig.", "fig,", "matplotlib", "ax,")
_NO_FLIP_KW = {"validate_args", "validate", "requires_grad", "create_graph", "retain_graph", "allow_unused", "squeeze",
               "set_to_none"}
_SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
_SYM = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
_SWAP_FN = {"sum": "mean", "mean": "sum", "nansum": "nanmean", "nanmean": "nansum", "log1p": "log", "expm1": "exp"}


@dataclass
class Mutant:
    cell: int          # index of the cell in the notebook
    cell_id: str       # the cell's id
    line: int          # line in the cell (1-based)
    kind: str          # mutation operator
    desc: str          # what changed
    edits: list        # [(start_offset, end_offset, replacement)] in the cell source
    status: str = ""
    seconds: float = 0.0
    error: str = ""

    def key(self): return (self.cell, self.line, self.kind, self.desc)


# ------------------------------------------------------------------ enumerating mutants
def _offsets(src):
    "Offsets of the start of each line of `src` (for ast's (lineno, col_offset), which count UTF-8 bytes)."
    starts, pos = [0], 0
    for l in src.split("\n"):
        pos += len(l) + 1; starts.append(pos)
    return starts


class _Finder:
    def __init__(self, src):
        self.src, self.lines = src, src.split("\n")
        self.starts = _offsets(src)
        self.tree = ast.parse(src)
        self.out = []
        self.parents = {}
        for p in ast.walk(self.tree):
            for c in ast.iter_child_nodes(p): self.parents[c] = p

    def off(self, lineno, col):
        line = self.lines[lineno - 1].encode()
        return self.starts[lineno - 1] + len(line[:col].decode(errors="ignore"))

    def span(self, node): return self.off(node.lineno, node.col_offset), self.off(node.end_lineno, node.end_col_offset)
    def seg(self, node): a, b = self.span(node); return self.src[a:b]

    def add(self, node, kind, desc, edits):
        self.out.append((node.lineno, kind, desc, edits))

    def replace(self, node, new_node, kind, desc):
        a, b = self.span(node)
        self.add(node, kind, desc, [(a, b, "(" + ast.unparse(new_node) + ")")])

    # -- which nodes are excluded
    def excluded(self, node):
        n = node
        while n in self.parents:
            p = self.parents[n]
            if isinstance(n, (ast.Raise, ast.Assert, ast.JoinedStr)): return True
            if isinstance(p, ast.If) and n is p.test and any(isinstance(s, ast.Raise) for s in p.body): return True
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str):
                return True                                                         # a docstring
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                if "plot" in n.name.lower() or n.name.startswith(("_check", "check_", "_validate", "_is_")) or n.name == "require":
                    return True
                if n.name == "__post_init__": return True
                if isinstance(n, ast.FunctionDef) and {a.arg for a in n.args.args} & {"ax", "axes", "fig"}: return True
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)) and n in p.decorator_list: return True
            if isinstance(p, ast.arg) or (isinstance(p, ast.FunctionDef) and n is p.returns): return True
            if isinstance(p, ast.AnnAssign) and n is p.annotation: return True
            if isinstance(n, ast.stmt) and not isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.If, ast.For, ast.With,
                                                               ast.While, ast.Try)):
                if any(w in self.seg(n) for w in _PLOT_WORDS): return True
            n = p
        return False

    def run(self):
        for node in ast.walk(self.tree):
            if not hasattr(node, "lineno") or self.excluded(node): continue
            self.visit(node)
        for fn in ast.walk(self.tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and not self.excluded(fn): self.ignored_args(fn)
        return self.out

    def visit(self, node):
        if isinstance(node, ast.BinOp) and type(node.op) in _SWAP_BIN:
            new = ast.BinOp(node.left, _SWAP_BIN[type(node.op)](), node.right)
            desc = f"{_SYM[type(node.op)]} -> {_SYM[type(new.op)]} in `{_short(self.seg(node))}`"
            self.replace(node, new, "binop", desc)
        elif isinstance(node, ast.AugAssign) and type(node.op) in _SWAP_BIN:
            a, b = self.span(node)
            text = self.src[a:b]
            sym, new = _SYM[type(node.op)], _SYM[_SWAP_BIN[type(node.op)]]
            i = text.find(sym + "=", len(self.seg(node.target)))
            if i >= 0: self.add(node, "binop", f"{sym}= -> {new}=", [(a + i, a + i + 1, new)])
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            c = node.value
            news = [1] if c == 0 else ([0, 2] if c == 1 else [c + 1, c * 2])
            for v in dict.fromkeys(news):
                v = type(c)(v)
                if v != c: self.replace(node, ast.Constant(v), "const", f"{c!r} -> {v!r}")
        elif isinstance(node, ast.Compare):
            operands = [node.left] + node.comparators
            for i, op in enumerate(node.ops):
                if type(op) not in _SWAP_CMP: continue
                ops = list(node.ops); ops[i] = _SWAP_CMP[type(op)]()
                new = ast.Compare(node.left, ops, node.comparators)
                desc = f"{_SYM[type(op)]} -> {_SYM[type(ops[i])]} in `{_short(self.seg(node))}`"
                self.replace(node, new, "compare", desc)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not (
                isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, int)):   # -1: a dim
            self.replace(node, node.operand, "neg", f"-x -> x in `{_short(self.seg(node))}`")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else (f.id if isinstance(f, ast.Name) else None)
            if name in _SWAP_FN and isinstance(f, ast.Attribute):     # x.sum(), torch.log1p(): attributes only
                new_f = ast.Attribute(f.value, _SWAP_FN[name], ast.Load())
                a, b = self.span(f)
                self.add(node, "call", f"{name} -> {_SWAP_FN[name]} in `{_short(self.seg(node))}`",
                         [(a, b, ast.unparse(new_f))])
            for k, kw in enumerate(node.keywords):
                if kw.arg is None: continue
                if isinstance(kw.value, ast.Constant) and type(kw.value.value) is bool and kw.arg not in _NO_FLIP_KW:
                    v = kw.value.value
                    self.replace(kw.value, ast.Constant(not v), "kwflip", f"{kw.arg}={v} -> {not v}")
                if kw.arg in _NO_FLIP_KW: continue
                new = ast.Call(node.func, node.args, node.keywords[:k] + node.keywords[k + 1:])
                self.replace(node, new, "dropkw", f"drop `{kw.arg}=` in `{_short(self.seg(node))}`")

    def ignored_args(self, fn):
        args = fn.args
        pos = args.posonlyargs + args.args
        pairs = list(zip(pos[len(pos) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for a, d in pairs:
            name, default = a.arg, self.seg(d)
            stmts = [s for s in ast.walk(fn) if isinstance(s, ast.stmt) and s is not fn]
            stmts.sort(key=lambda s: (s.lineno, s.col_offset))
            first_store = min((s.lineno for s in stmts for n in ast.walk(s)
                               if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                               and not isinstance(s, (ast.For, ast.If, ast.With, ast.While, ast.Try))), default=10**9)
            uses = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                    and n.lineno <= first_store and not self.excluded(n) and not self._shadowed(n, name, fn)]
            if not uses: continue
            edits = sorted((self.span(n) + (f"({default})",) for n in uses), reverse=True)
            desc = f"`{name}` ignored (uses -> default {_short(default)}) in {fn.name}"
            self.add(uses[0], "ignored_arg", desc, edits)

    def _shadowed(self, node, name, fn):
        n = node
        while n in self.parents and n is not fn:
            n = self.parents[n]
            if isinstance(n, (ast.Lambda, ast.FunctionDef)) and n is not fn:
                if name in [a.arg for a in n.args.args + n.args.kwonlyargs + n.args.posonlyargs]: return True
            if isinstance(n, ast.comprehension): pass
        return False


def _short(s, n=60):
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 3] + "..."


def export_cells(nb):
    "[(index, cell, module or None)] of the export cells; module None means the default_exp module."
    out = []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "code": continue
        m = _re_export.search(c["source"])
        if m: out.append((i, c, (m.group(1).strip() or None)))
    return out


def enumerate_mutants(nb):
    muts = []
    for i, c, _ in export_cells(nb):
        try: found = _Finder(c["source"]).run()
        except SyntaxError: continue
        seen = set()
        for line, kind, desc, edits in found:
            src = apply_edits(c["source"], edits)
            if src == c["source"] or src in seen: continue
            try: ast.parse(src)
            except SyntaxError: continue
            seen.add(src)
            muts.append(Mutant(i, c.get("id", str(i)), line, kind, desc, edits))
    muts.sort(key=lambda m: (m.cell, m.line, m.kind, m.desc))
    return muts


def apply_edits(src, edits):
    for a, b, text in sorted(edits, reverse=True): src = src[:a] + text + src[b:]
    return src


# ------------------------------------------------------------------ running
_PATCH = '''#| hide
import sys as _mut_sys, importlib as _mut_il
_mut_mod = _mut_il.import_module({module!r})
for _mut_n in {names!r}:
    if _mut_n not in globals(): continue
    _mut_old = getattr(_mut_mod, _mut_n, None)
    for _mut_m in [m for k, m in list(_mut_sys.modules.items()) if k.split(".")[0] == {pkg!r} and m is not None]:
        if _mut_m is _mut_mod or (_mut_old is not None and getattr(_mut_m, _mut_n, None) is _mut_old):
            setattr(_mut_m, _mut_n, globals()[_mut_n])
'''


def defined_names(src):
    names = []
    for s in ast.parse(src).body:
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names.append(s.name)
        elif isinstance(s, (ast.Assign, ast.AnnAssign)):
            for t in (s.targets if isinstance(s, ast.Assign) else [s.target]):
                names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    return names


def mutated_nb(nb, m: Mutant | None, module, pkg):
    import copy, nbformat
    nb = copy.deepcopy(nb)
    if m is None: return nb
    cell = nb["cells"][m.cell]
    cell["source"] = apply_edits(cell["source"], m.edits)
    target = _re_export.search(cell["source"]).group(1).strip() or module
    names = defined_names(cell["source"])
    patch = nbformat.v4.new_code_cell(_PATCH.format(module=f"{pkg}.{target}", names=names, pkg=pkg))
    patch["id"] = "mutpatch0"
    nb["cells"].insert(m.cell + 1, patch)
    return nb


def run_nb(nb, workdir, timeout, keep=None):
    "('OK'|'FAIL'|'TIMEOUT', seconds, error tail) for one run of `nb` by nbdev.test.test_nb in a subprocess."
    import nbformat
    with tempfile.TemporaryDirectory(prefix="mutate_") as tmp:
        fn = Path(tmp) / "mutant.ipynb"
        nbformat.write(nbformat.from_dict(nb), str(fn))
        if keep: Path(keep).write_text(fn.read_text())
        code = ("import sys, nbdev.test as T; from fastcore.xtras import working_directory as W\n"
                f"T.working_directory = lambda _p: W({str(workdir)!r})\n"
                "from nbdev.config import get_config\n"
                "ok, _ = T.test_nb(T.Path(sys.argv[1]), skip_flags=get_config().tst_flags.split())\n"
                "sys.exit(0 if ok else 1)\n")
        t0 = time.perf_counter()
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
        try:
            p = subprocess.run(["nice", "-n", "10", sys.executable, "-c", code, str(fn)], cwd=str(workdir), env=env,
                               capture_output=True, text=True, timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired:
            return "TIMEOUT", time.perf_counter() - t0, ""
        dt = time.perf_counter() - t0
        tail = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
        err = next((l for l in reversed(tail) if re.match(r"^\w*(Error|Exception)\b", l)), tail[-1] if tail else "")
        return ("OK" if p.returncode == 0 else "FAIL"), dt, err[:200]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebook")
    ap.add_argument("--max", type=int, default=25, help="number of mutants to run (sampled)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=300, help="seconds per notebook run")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--list", action="store_true", help="only list the mutants that would run")
    ap.add_argument("--keep", help="folder to keep the mutated notebooks in")
    ap.add_argument("--cells", help="only mutants in these export cells (comma-separated cell ids)")
    a = ap.parse_args(argv)
    import nbformat
    path = Path(a.notebook).resolve()
    nb = json.loads(path.read_text())
    for c in nb["cells"]:
        if isinstance(c.get("source"), list): c["source"] = "".join(c["source"])
    mm = _re_default_exp.search("\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "code"))
    module = mm.group(1) if mm else None
    from nbdev.config import get_config
    pkg = get_config(path=path.parent).lib_name
    allm = enumerate_mutants(nb)
    if a.cells: allm = [m for m in allm if m.cell_id in set(a.cells.split(","))]
    rng = random.Random(a.seed)
    chosen = sorted(rng.sample(allm, min(a.max, len(allm))), key=Mutant.key)
    print(f"{path.name}: {len(allm)} mutants in {len(export_cells(nb))} export cells; "
          f"running {len(chosen)} (seed {a.seed})", flush=True)
    if a.list:
        for m in chosen: print(f"  cell {m.cell_id} L{m.line:<3} {m.kind:11s} {m.desc}")
        return 0
    st, dt, err = run_nb(mutated_nb(nb, None, module, pkg), path.parent, a.timeout)
    print(f"unmutated run: {st} in {dt:.1f} s {err}", flush=True)
    if st != "OK": print("the unmutated notebook does not pass: nothing measured"); return 2
    timeout = min(a.timeout, max(60.0, 3 * dt))
    for k, m in enumerate(chosen):
        keep = Path(a.keep) / f"{path.stem}_{k:03d}.ipynb" if a.keep else None
        st, m.seconds, m.error = run_nb(mutated_nb(nb, m, module, pkg), path.parent, timeout, keep)
        m.status = {"OK": "SURVIVED", "FAIL": "KILLED", "TIMEOUT": "TIMEOUT"}[st]
        print(f"[{k + 1:3d}/{len(chosen)}] cell {m.cell_id} L{m.line:<3} {m.kind:11s} {m.status:8s} {m.seconds:5.1f}s"
              f"  {m.desc}"
              + (f"   <{m.error}>" if m.status == "KILLED" and m.error else ""), flush=True)
    n = len(chosen)
    killed = sum(m.status in ("KILLED", "TIMEOUT") for m in chosen)
    print(f"\n{path.name}: {killed}/{n} killed ({100 * killed / max(n, 1):.0f}%), "
          f"{sum(m.status == 'TIMEOUT' for m in chosen)} by timeout ({timeout:.0f} s); unmutated run {dt:.1f} s")
    surv = [m for m in chosen if m.status == "SURVIVED"]
    if surv:
        print("survivors (judge whether equivalent):")
        for m in surv: print(f"  cell {m.cell_id} L{m.line:<3} {m.kind:11s} {m.desc}")
    if a.json:
        Path(a.json).write_text(json.dumps({"notebook": path.name, "seed": a.seed, "n_mutants": len(allm), "run": n,
                                            "killed": killed, "baseline_s": dt,
                                            "mutants": [asdict(m) for m in chosen]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
