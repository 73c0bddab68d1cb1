#!/usr/bin/env python3
"""Fuzz the public API of negbio_vae: a valid call per public callable, then one bad argument at a time.

    python .ci/fuzz_api.py [--json out.json] [--module NAME] [--timeout 20] [--mem-gb 4] [-q]

Every case runs in a worker subprocess (fresh import of the package) under RLIMIT_AS = (address space after
import) + --mem-gb and a per-case wall-clock timeout; a worker that crashes or hangs is killed and replaced.
Outcomes: CLEAR (ValueError, or a documented subclass/FileNotFoundError, naming the mutated parameter),
UNCLEAR (other exception, ValueError not naming the parameter, crash, timeout, MemoryError/allocator failure),
SILENT (returned normally on an invalid input, or returned NaN/inf on a lenient mutation), OK-VALID (a lenient
mutation - half precision, int/bool tensor, list, extra dim, empty - that returned finite values).
BASE-FAIL marks a valid call of the table that itself failed (fix the table, not the package).
"""
import argparse, json, math, os, re, select, subprocess, sys, time

HERE = os.path.abspath(__file__)
MODULES = ("distributions relaxations campbell nb_moments kl models com_poisson data train evaluate gradients "
           "nb_gradients poglm benchmarks cli").split()
SCRATCH = f"/tmp/fuzz_api_{os.getuid()}"

# ----------------------------------------------------------------------------------------------------------------
# Mutations by domain. Each: (label, fn(valid_value) -> bad value, strict). strict: the call must raise.
# Tensor domains: 'T' real, 'T+' > 0, 'T0+' >= 0, 'T01' in (0, 1); suffix flags: 'b' (add a shape that does not
# broadcast with the other tensors), 'h' (add a huge value that drives allocation), 'o' (None is allowed).
# Scalar domains: 'f' finite real, 'f+' > 0, 'f0+' >= 0, 'f01' in (0, 1), 'i+' int >= 1, 'i0+' int >= 0,
# 'n+' a size (adds 10**12), 'str' a choice, 'dev' a device, 'dtype', 'shape' an image shape, 'ftup+' a tuple of
# positive floats, 'path', 'obj' any object (None / str), 'fn' a callable.
# ----------------------------------------------------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")


def _tensor_muts(dom, flags):
    import torch

    def setfirst(val):
        def f(v):
            v = v.detach().clone()
            v.view(-1)[0] = val
            return v
        return f
    m = [("nan", setfirst(NAN), True), ("+inf", setfirst(INF), True), ("-inf", setfirst(-INF), True)]
    if dom == "T+":
        m += [("negative", lambda v: -v.detach().abs() - 0.5, True), ("zero", lambda v: torch.zeros_like(v), True)]
    if dom == "T0+":
        m += [("negative", lambda v: -v.detach().abs() - 0.5, True)]
    if dom == "T01":
        m = [x for x in m if x[0] != "-inf"]
        m += [("zero", lambda v: torch.zeros_like(v), True), ("one", lambda v: torch.ones_like(v), True),
              ("1.5", lambda v: torch.full_like(v, 1.5), True)]
    m += [("int-tensor", lambda v: v.detach().abs().ceil().long() if dom in ("T+", "T01") else v.detach().round().long(),
           False),
          ("bool-tensor", lambda v: v.detach() != 0, False),
          ("str", lambda v: "abc", True),
          ("list", lambda v: v.tolist(), False),
          ("extra-dim", lambda v: v.unsqueeze(0), False),
          ("empty", lambda v: v.reshape(-1)[:0], False),
          ("float16", lambda v: v.detach().half(), False),
          ("bfloat16", lambda v: v.detach().bfloat16(), False)]
    if "o" not in flags:
        m.append(("None", lambda v: None, True))
    if "b" in flags:
        m.append(("mismatched", lambda v: torch.cat([v, v[..., :1]], -1) if v.dim() else v.expand(3, 5), True))
    if "h" in flags:
        m.append(("huge-1e12", lambda v: torch.full_like(v, 1e12), False))
    return m


def _scalar_muts(dom, flags):
    m = []
    if dom in ("f", "f+", "f0+", "f01"):
        m += [("nan", lambda v: NAN, True), ("+inf", lambda v: INF, True)]
        if dom in ("f", "f+", "f0+"):
            m.append(("-inf", lambda v: -INF, True))
        if dom == "f+":
            m += [("negative", lambda v: -1.0, True), ("zero", lambda v: 0.0, True)]
        if dom == "f0+":
            m.append(("negative", lambda v: -1.0, True))
        if dom == "f01":
            m += [("zero", lambda v: 0.0, True), ("one", lambda v: 1.0, True), ("1.5", lambda v: 1.5, True)]
        m += [("str", lambda v: "abc", True), ("bool", lambda v: True, True)]
    elif dom in ("i+", "i0+", "n+"):
        if dom in ("i+", "n+"):
            m.append(("zero", lambda v: 0, True))
        m += [("negative", lambda v: -1, True), ("float", lambda v: 2.5, True), ("str", lambda v: "3", True),
              ("bool", lambda v: True, True)]
        if dom == "n+":
            m.append(("huge-1e12", lambda v: 10 ** 12, False))   # lenient: clipped/finite is fine, allocating is not
    elif dom == "str":
        m += [("bogus", lambda v: "bogus", True), ("int", lambda v: 3, True)]
    elif dom == "dev":
        m += [("cuda", lambda v: "cuda", True), ("bogus", lambda v: "bogus", True)]
    elif dom == "dtype":
        import torch
        m += [("int64", lambda v: torch.int64, True), ("str", lambda v: "float32", True)]
    elif dom == "shape":
        m += [("zero-dim", lambda v: (v[0], 0, v[2]), True), ("negative", lambda v: (v[0], -8, v[2]), True),
              ("rank2", lambda v: tuple(v[1:]), True), ("float", lambda v: (v[0], 8.5, v[2]), True),
              ("str", lambda v: "abc", True), ("huge-1e12", lambda v: (v[0], 10 ** 6, 10 ** 6), False)]
    elif dom == "ftup+":
        m += [("negative", lambda v: (-1.0,), True), ("nan", lambda v: (NAN,), True), ("+inf", lambda v: (INF,), True),
              ("empty", lambda v: (), True), ("str", lambda v: "abc", True)]
    elif dom == "path":
        m += [("missing", lambda v: os.path.join(SCRATCH, "no", "such", "file.pt"), True), ("int", lambda v: 3, True)]
    elif dom in ("obj", "fn"):
        m += [("str", lambda v: "abc", True), ("int", lambda v: 3, True)]
    else:
        raise KeyError(dom)
    if dom not in ("obj", "fn") and "o" not in flags and not any(x[0] == "None" for x in m):
        m.append(("None", lambda v: None, True))
    if dom in ("obj", "fn") and "o" not in flags:
        m.append(("None", lambda v: None, True))
    return m


def mutations(domain):
    dom, _, flags = domain.partition("|")
    return _tensor_muts(dom, flags) if dom.startswith("T") else _scalar_muts(dom, flags)


# ----------------------------------------------------------------------------------------------------------------
# The table of valid calls. Spec(module, name, make, dom): `make()` returns the kwargs of a valid call (fresh
# objects each time); `dom` maps mutated argument names to domains. `call` overrides getattr(module, name) for
# methods (a wrapper whose parameter names are those of the method).
# ----------------------------------------------------------------------------------------------------------------
SPECS = []


class Spec:
    def __init__(self, module, name, make, dom=None, call=None, note=""):
        self.module, self.name, self.make, self.dom, self.call, self.note = module, name, make, dom or {}, call, note
        SPECS.append(self)

    @property
    def key(self): return f"{self.module}.{self.name}"


def T(*vals, shape=None):
    import torch
    t = torch.tensor(vals, dtype=torch.float32)
    return t.reshape(shape) if shape else t


def M(name):
    import importlib
    return importlib.import_module(f"negbio_vae.{name}")


def scratch(name):
    os.makedirs(SCRATCH, exist_ok=True)
    return os.path.join(SCRATCH, name)


# --- small shared fixtures -----------------------------------------------------------------------------------
IMG = (1, 8, 8)


def tiny_model(kind="negbio", **kw):
    import torch
    torch.manual_seed(0)
    kw = dict(dict(image_shape=IMG, n_latents=4, arch="mlp", hidden=16), **kw)
    return M("models").build_model(kind, **kw)


def tiny_images(n=6):
    import torch
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, *IMG, generator=g)


def tiny_dataset(n=8):
    import torch
    d = M("data")
    info = d.DatasetInfo("tiny", IMG, (0.0, 1.0), 2, ("train",))
    return d.ImageTensorDataset((tiny_images(n) * 255).to(torch.uint8), torch.arange(n) % 2, info, max_value=255.0)


def nb(r=(2.0, 3.0), p=(0.3, 0.6)):
    return M("distributions").NegativeBinomial(T(*r), T(*p))


def feats(n=40, d=4, k=2, seed=0):
    import torch
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = torch.randn(n, d, generator=g) + y[:, None].float() * 2
    return x, y


def lin(B=2, K=3, D=4):
    import torch
    g = torch.Generator().manual_seed(0)
    return dict(u=torch.randn(B, K, generator=g) * 0.3, x=torch.rand(B, D, generator=g),
                phi=torch.randn(D, K, generator=g) * 0.5)


def poglm_model():
    import torch
    torch.manual_seed(0)
    return M("poglm").POGLM(n_visible=3, n_hidden=2, n_lags=3)


def poglm_visible():
    import torch
    g = torch.Generator().manual_seed(0)
    return torch.poisson(torch.full((2, 10, 3), 0.5), generator=g)


def poglm_data():
    return M("poglm").make_poglm_data(n_sets=1, n_train=2, n_test=2, n_time_bins=10)[0]


def records():
    return [dict(estimator="eat_cubic", temperature=t, n_samples=1, seed=s, elbo=-10.0 - t + s, mll=-9.0, cll=-8.0,
                 hll=-3.0, weight_error=0.5, bias_error=0.2) for t in (0.1, 0.5) for s in (0, 1)]


# --- distributions -------------------------------------------------------------------------------------------
Spec("distributions", "NegativeBinomial", lambda: dict(r=T(2.0, 3.0), p=T(0.3, 0.6)),
     {"r": "T+|b", "p": "T01|b"})
Spec("distributions", "NegativeBinomial(logits)", lambda: dict(r=T(2.0, 3.0), logits=T(-1.0, 0.5)),
     {"logits": "T|b"}, call=lambda r, logits: M("distributions").NegativeBinomial(r, logits=logits))
Spec("distributions", "NegativeBinomial.log_prob", lambda: dict(value=T(0.0, 4.0)), {"value": "T0+|b"},
     call=lambda value: nb().log_prob(value))
Spec("distributions", "NegativeBinomial.sample", lambda: dict(sample_shape=(3,)), {"sample_shape": "obj|o"},
     call=lambda sample_shape: nb().sample(sample_shape))
Spec("distributions", "NegativeBinomial.sample(huge)", lambda: dict(sample_shape=3), {"sample_shape": "n+"},
     call=lambda sample_shape: nb().sample((sample_shape,)))
Spec("distributions", "overdispersion_index", lambda: dict(z=T(1.0, 2.0, 0.0, 5.0, 3.0, 1.0, shape=(3, 2)), eps=0.0),
     {"z": "T0+", "eps": "f0+"})

# --- relaxations ---------------------------------------------------------------------------------------------
R = lambda: T(0.5, 3.0, 20.0)  # noqa: E731
for _n in ("sigmoid", "cubic"):
    Spec("relaxations", _n, lambda: dict(u=T(-1.0, 0.0, 0.3)), {"u": "T"})
Spec("relaxations", "soft_indicator", lambda: dict(u=T(-1.0, 0.0, 0.3), indicator="cubic"), {"u": "T", "indicator": "str"})
for _n in ("eat_horizon", "eat_arrivals", "eat_half_width"):
    Spec("relaxations", _n, lambda: dict(rate=R(), temperature=0.1, indicator="cubic", tol=1e-4),
         {"rate": "T0+|h", "temperature": "f0+", "indicator": "str", "tol": "f01"})
Spec("relaxations", "eat_arrivals_poisson", lambda: dict(rate=R(), temperature=0.1, n_arrivals=None, max_arrivals=1024),
     {"rate": "T0+|h", "temperature": "f0+", "n_arrivals": "n+|o", "max_arrivals": "n+"})
Spec("relaxations", "eat_dense", lambda: dict(rate=R(), temperature=0.1, n_arrivals=60),
     {"rate": "T0+|h", "temperature": "f0+", "n_arrivals": "n+", "max_elements": "n+"})
Spec("relaxations", "poisson_sample", lambda: dict(rate=R()), {"rate": "T0+|h"})
Spec("relaxations", "window_moments", lambda: dict(L=T(0.0, 1.0, 5.0), hi=T(3.0, 6.0, 30.0), tau=0.1),
     {"L": "T0+|b", "hi": "T+|b", "tau": "f0+", "indicator": "str"})
Spec("relaxations", "eat_window_poisson", lambda: dict(rate=R(), temperature=0.1),
     {"rate": "T0+|h", "temperature": "f0+", "tol": "f01", "chunk_points": "n+", "kernel": "str", "clt_points": "f+"})
Spec("relaxations", "eat_poisson", lambda: dict(rate=R(), temperature=0.1, sampler=None),
     {"rate": "T0+|h", "temperature": "f0+", "n_arrivals": "n+|o", "sampler": "str|o", "indicator": "str"})
Spec("relaxations", "gsm_counts", lambda: dict(logits=T(-1.0, -2.0, -3.0, -1.5, -0.5, -4.0, shape=(2, 3)), temperature=0.1),
     {"logits": "T", "temperature": "f0+"})
Spec("relaxations", "gsm_window", lambda: dict(rate=R(), temperature=0.1), {"rate": "T0+|h", "temperature": "f0+", "tol": "f01"})
Spec("relaxations", "gsm_poisson", lambda: dict(rate=R(), temperature=0.1, max_categories=4096),
     {"rate": "T0+|h", "temperature": "f0+", "n_categories": "n+|o", "tol": "f01", "chunk_cells": "n+", "max_categories": "n+"})
Spec("relaxations", "relaxed_poisson", lambda: dict(rate=R(), temperature=0.1, method="eat_cubic"),
     {"rate": "T0+|h", "temperature": "f0+", "method": "str", "tol": "f01"})
Spec("relaxations", "relaxed_poisson(gsm)", lambda: dict(rate=R(), temperature=0.1),
     {"rate": "T0+|h", "temperature": "f0+"},
     call=lambda rate, temperature: M("relaxations").relaxed_poisson(rate, temperature, "gsm"))
Spec("relaxations", "relaxed_nb", lambda: dict(r=T(2.0, 5.0), p=T(0.3, 0.6), temperature=0.1, sample_shape=(2,)),
     {"r": "T+|b", "p": "T01|b", "temperature": "f0+", "method": "str", "sample_shape": "obj|o"})
Spec("relaxations", "relaxed_nb(huge)", lambda: dict(sample_shape=2), {"sample_shape": "n+"},
     call=lambda sample_shape: M("relaxations").relaxed_nb(T(2.0), T(0.5), 0.1, sample_shape=(sample_shape,)))
Spec("relaxations", "RelaxedPoisson", lambda: dict(rate=R(), temperature=0.1),
     {"rate": "T0+|b", "temperature": "f0+", "method": "str", "tol": "f01"})
Spec("relaxations", "RelaxedPoisson.rsample", lambda: dict(sample_shape=3), {"sample_shape": "n+"},
     call=lambda sample_shape: M("relaxations").RelaxedPoisson(R(), 0.1).rsample((sample_shape,)))
Spec("relaxations", "RelaxedNegativeBinomial", lambda: dict(r=T(2.0, 5.0), p=T(0.3, 0.6), temperature=0.1),
     {"r": "T+|b", "p": "T01|b", "temperature": "f0+", "method": "str"})

# --- campbell ------------------------------------------------------------------------------------------------
for _n in ("mean_factor", "variance_factor", "fano_factor"):
    Spec("campbell", _n, lambda: dict(tau=0.1, indicator="cubic"), {"tau": "f+", "indicator": "str"})
Spec("campbell", "campbell_factors_quad", lambda: dict(tau=0.1), {"tau": "f+", "indicator": "str", "epsrel": "f01"})
Spec("campbell", "wasserstein_to_pmf",
     lambda: dict(samples=T(0.0, 1.2, 2.1, 3.0), support=T(0.0, 1.0, 2.0, 3.0), pmf=T(0.1, 0.4, 0.3, 0.2), p=1),
     {"samples": "T", "support": "T|b", "pmf": "T0+|b", "p": "i+"})
Spec("campbell", "poisson_pmf", lambda: dict(rate=2.0), {"rate": "f+", "tail": "f01"})
Spec("campbell", "relaxation_sweep",
     lambda: dict(samplers={"eat": lambda r, t: M("relaxations").relaxed_poisson(r, t)}, rates=(2.0,), taus=(0.1,),
                  n_samples=20, n_trials=2),
     {"samplers": "obj", "rates": "ftup+", "taus": "ftup+", "n_samples": "n+", "n_trials": "n+", "dtype": "dtype",
      "device": "dev", "max_elements": "n+"})
Spec("campbell", "papers_upper_bound", lambda: dict(rate=2.0, alpha=1e-3), {"rate": "f+", "alpha": "f01"})
Spec("campbell", "fixed_count_factors", lambda: dict(rate=2.0, tau=0.1, n_arrivals=10),
     {"rate": "f+", "tau": "f+", "n_arrivals": "n+", "indicator": "str"})

# --- nb_moments ----------------------------------------------------------------------------------------------
for _n in ("relaxed_nb_mean", "relaxed_nb_variance", "relaxed_nb_fano"):
    Spec("nb_moments", _n, lambda: dict(r=T(2.0, 5.0), p=T(0.3, 0.6), tau=0.1),
         {"r": "T+|b", "p": "T01|b", "tau": "f+", "indicator": "str"})

# --- kl ------------------------------------------------------------------------------------------------------
Spec("kl", "exp_minus_one_minus", lambda: dict(t=T(0.0, 0.5, -0.3, 3.0)), {"t": "T"})
Spec("kl", "kl_poisson", lambda: dict(rate_q=T(1.0, 3.0), rate_p=T(2.0, 2.0)), {"rate_q": "T+|b", "rate_p": "T+|b"})
Spec("kl", "kl_nb_series", lambda: dict(q=nb(), p=nb((3.0, 2.0), (0.5, 0.5)), max_terms=100000),
     {"q": "obj", "p": "obj", "tol": "f01", "max_terms": "n+", "chunk_elements": "n+"})
Spec("kl", "kl_nb_ds", lambda: dict(r=T(2.0, 3.0), p=T(0.3, 0.6), delta_p=T(1.2, 0.8)),
     {"r": "T+|b", "p": "T01|b", "delta_p": "T+|b"})
Spec("kl", "kl_nb_mc", lambda: dict(q=nb(), p=nb((3.0, 2.0), (0.5, 0.5)), z=T(1.0, 2.0)),
     {"q": "obj", "p": "obj", "z": "T0+|b"})

# --- models --------------------------------------------------------------------------------------------------
Spec("models", "ResDense", lambda: dict(width=8), {"width": "n+"})
Spec("models", "make_encoder", lambda: dict(arch="mlp", image_shape=IMG, out_features=4, hidden=16),
     {"arch": "str", "image_shape": "shape", "out_features": "n+", "hidden": "n+"})
Spec("models", "make_encoder(conv)", lambda: dict(image_shape=IMG, channels=(4, 8)),
     {"image_shape": "shape", "channels": "obj"},
     call=lambda image_shape, channels: M("models").make_encoder("conv", image_shape, 4, 16, channels))
Spec("models", "make_decoder", lambda: dict(arch="mlp", image_shape=IMG, n_latents=4, hidden=16),
     {"arch": "str", "image_shape": "shape", "n_latents": "n+", "hidden": "n+", "data_range": "obj|o"})
_MK = {"image_shape": "shape", "n_latents": "n+", "arch": "str", "beta": "f0+", "n_samples": "n+", "temperature": "f0+",
       "hidden": "n+", "data_range": "obj|o"}
for _n in ("GaussianVAE", "LaplaceVAE", "PoissonVAE", "NegBioVAE"):
    Spec("models", _n, lambda: dict(image_shape=IMG, n_latents=4, arch="mlp", hidden=16), dict(_MK))
Spec("models", "CategoricalVAE", lambda: dict(image_shape=IMG, n_latents=4, n_categories=2, arch="mlp", hidden=16),
     dict(_MK, n_categories="n+|o"))
Spec("models", "build_model", lambda: dict(name="negbio", variant="DS-C", image_shape=IMG, n_latents=4, arch="mlp",
                                           hidden=16), {"name": "str", "variant": "str|o"})


def _forward(kind):
    def forward(x, temperature=None, beta=None):
        m = tiny_model(kind)
        m.train()
        return m(x, temperature=temperature, beta=beta)
    return forward


for _k in ("gaussian", "laplace", "categorical", "poisson", "negbio"):
    Spec("models", f"{_k}.forward", lambda: dict(x=tiny_images(3), temperature=0.5, beta=1.0),
         {"x": "T", "temperature": "f0+|o", "beta": "f0+|o"}, call=_forward(_k))
Spec("models", "negbio.sample", lambda: dict(n=3), {"n": "n+"}, call=lambda n: tiny_model().sample(n))
Spec("models", "negbio.representation", lambda: dict(x=tiny_images(3)), {"x": "T"},
     call=lambda x: tiny_model().representation(x))
Spec("models", "dead_neuron_ratio", lambda: dict(kl=T(0.0, 1.0, 0.001, 2.0, shape=(2, 2)), threshold=0.01),
     {"kl": "T0+", "threshold": "f0+"})

# --- com_poisson ---------------------------------------------------------------------------------------------
Spec("com_poisson", "com_poisson_support", lambda: dict(rate=T(1.0, 4.0), nu=T(0.5, 1.5)),
     {"rate": "T+|bh", "nu": "T+|b"})
Spec("com_poisson", "com_poisson_tail_bound", lambda: dict(rate=T(1.0, 4.0), nu=T(0.5, 1.5), m=30),
     {"rate": "T+|b", "nu": "T+|b", "m": "n+"})
Spec("com_poisson", "ComPoisson", lambda: dict(rate=T(1.0, 4.0), nu=T(0.5, 1.5), n_support=None),
     {"rate": "T+|bh", "nu": "T+|b", "n_support": "n+|o"})
Spec("com_poisson", "ComPoisson.rsample-like(log_prob)", lambda: dict(value=T(0.0, 3.0)), {"value": "T0+|b"},
     call=lambda value: M("com_poisson").ComPoisson(T(1.0, 4.0), T(0.5, 1.5)).log_prob(value))
Spec("com_poisson", "kl_com_poisson",
     lambda: dict(q=M("com_poisson").ComPoisson(T(1.0, 4.0), T(0.5, 1.5)),
                  p=M("com_poisson").ComPoisson(T(2.0, 2.0), T(1.0, 1.0))), {"q": "obj", "p": "obj"})
Spec("com_poisson", "ComPoissonVAE", lambda: dict(image_shape=IMG, n_latents=4, arch="mlp", hidden=16),
     {"image_shape": "shape", "n_latents": "n+"})


def _cp_forward(x, temperature=None, beta=None):
    import torch
    torch.manual_seed(0)
    m = M("com_poisson").ComPoissonVAE(IMG, 4, arch="mlp", hidden=16)
    return m(x, temperature=temperature, beta=beta)


Spec("com_poisson", "ComPoissonVAE.forward", lambda: dict(x=tiny_images(3), temperature=0.5, beta=1.0),
     {"x": "T", "temperature": "f0+|o", "beta": "f0+|o"}, call=_cp_forward)

# --- data ----------------------------------------------------------------------------------------------------
Spec("data", "data_root", lambda: dict(root=SCRATCH), {"root": "obj|o"})
Spec("data", "dataset_info", lambda: dict(name="digits"), {"name": "str"})
Spec("data", "get_dataset", lambda: dict(name="digits", split="train"), {"name": "str", "split": "str", "root": "path|o"})
Spec("data", "get_dataset(missing files)", lambda: dict(root=SCRATCH), {"root": "path"},
     call=lambda root: M("data").get_dataset("mnist", root=root), note="valid call expected to raise DataNotFoundError")
Spec("data", "ImageTensorDataset",
     lambda: dict(images=(tiny_images(4) * 255).round(), labels=T(0, 1, 0, 1).long(),
                  info=M("data").DatasetInfo("tiny", IMG, (0.0, 1.0), 2, ("train",)), max_value=255.0),
     {"images": "T0+", "labels": "obj|o", "info": "obj", "max_value": "f+", "split": "str"})
Spec("data", "ImageTensorDataset[0]", lambda: dict(index=0), {"index": "i0+"}, call=lambda index: tiny_dataset()[index])
Spec("data", "block_sum", lambda: dict(x=tiny_images(2), factor=2), {"x": "T", "factor": "n+"})
Spec("data", "whitening_filter", lambda: dict(height=8, width=8, f0=0.5, n=4),
     {"height": "n+", "width": "n+", "f0": "f+", "n": "f+", "dtype": "dtype", "device": "dev"})
Spec("data", "whiten", lambda: dict(images=tiny_images(2)[:, 0], f0=0.5, n=4), {"images": "T", "f0": "f+", "n": "f+"})
Spec("data", "lcn_window", lambda: dict(kernel_size=5, sigma=0.5),
     {"kernel_size": "n+", "sigma": "f+", "dtype": "dtype", "device": "dev"})
Spec("data", "local_contrast_normalize", lambda: dict(images=tiny_images(2)[:, 0], kernel_size=5, sigma=0.5),
     {"images": "T", "kernel_size": "n+", "sigma": "f+"})
Spec("data", "radial_power_spectrum", lambda: dict(images=[tiny_images(1)[0, 0].repeat(4, 4)], tile=16),
     {"images": "obj", "tile": "n+"})
Spec("data", "zscore", lambda: dict(x=tiny_images(2)), {"x": "T", "dim": "obj|o"})
Spec("data", "sample_patches", lambda: dict(images=[tiny_images(1)[0, 0].repeat(4, 4)], n_patches=4, patch_size=8,
                                            border=2, min_std=0.0),
     {"images": "obj", "n_patches": "n+", "patch_size": "n+", "border": "i0+", "min_std": "f0+", "columns": "obj"})
Spec("data", "make_loader", lambda: dict(dataset=tiny_dataset(), batch_size=4),
     {"dataset": "obj", "batch_size": "n+", "num_workers": "i0+"})
Spec("data", "natural_images", lambda: dict(source="skimage", names=None), {"source": "str", "root": "path|o"})

# --- train ---------------------------------------------------------------------------------------------------
Spec("train", "lr_factor", lambda: dict(step=5, total_steps=10, warmup_steps=2, min_ratio=0.1),
     {"step": "i0+", "total_steps": "i+", "warmup_steps": "i0+", "min_ratio": "f0+"})
Spec("train", "temperature_at", lambda: dict(step=5, total_steps=10, tau_start=1.0, tau_end=0.1, anneal_frac=0.5),
     {"step": "i0+", "total_steps": "i+", "tau_start": "f+", "tau_end": "f+", "anneal_frac": "f0+", "schedule": "str"})
Spec("train", "beta_at", lambda: dict(step=5, beta=1.0, warmup_steps=10), {"step": "i0+", "beta": "f0+", "warmup_steps": "i0+"})
Spec("train", "TrainConfig", lambda: dict(max_steps=2, batch_size=4, progress=False, device="cpu"),
     {"epochs": "i+", "max_steps": "i+|o", "batch_size": "n+", "optimizer": "str", "lr": "f+", "weight_decay": "f0+",
      "warmup_epochs": "f0+", "lr_min_ratio": "f0+", "beta": "f0+|o", "tau_start": "f+", "tau_end": "f+",
      "tau_anneal_frac": "f0+", "tau_schedule": "str", "grad_clip": "f+|o", "device": "dev|o", "amp_dtype": "str",
      "checkpoint_every": "i+", "log_every": "i+", "val_every": "i+", "distributed": "str", "num_workers": "i0+"})
Spec("train", "EpochBatchSampler", lambda: dict(n=10, batch_size=4),
     {"n": "n+", "batch_size": "n+", "rank": "i0+", "world_size": "i+"})
Spec("train", "EpochBatchSampler(iter)", lambda: dict(n=10), {"n": "n+"},
     call=lambda n: list(M("train").EpochBatchSampler(n, 4)))


def _write_ok(f): f.write(b"ok")


Spec("train", "atomic_write", lambda: dict(path=scratch("aw.bin"), write=_write_ok), {"path": "obj", "write": "fn"})
Spec("train", "atomic_save", lambda: dict(obj={"a": T(1.0)}, path=scratch("as.pt")), {"path": "obj"})


def _weights_file():
    import torch
    p = scratch("w.pt")
    torch.save({"a": T(1.0)}, p)
    return p


Spec("train", "load_weights", lambda: dict(path=_weights_file()), {"path": "path", "map_location": "dev", "what": "str"})
Spec("train", "load_checkpoint", lambda: dict(path=_weights_file()), {"path": "path", "map_location": "dev"})
Spec("train", "restore_rng_state", lambda: dict(st=M("train").capture_rng_state()), {"st": "obj"})
Spec("train", "resolve_device", lambda: dict(device="cpu"), {"device": "dev|o", "local_rank": "i0+|o"})
Spec("train", "History", lambda: dict(rows=[{"step": 1, "loss": 0.5}]), {"rows": "obj|o"})


def _fit(model, train_data, config):
    return M("train").fit(model, train_data, None, config)


Spec("train", "fit", lambda: dict(model=tiny_model(), train_data=tiny_dataset(8),
                                  config=M("train").TrainConfig(max_steps=2, batch_size=4, progress=False, device="cpu")),
     {"model": "obj", "train_data": "obj", "config": "obj|o"}, call=_fit)
Spec("train", "measure_throughput", lambda: dict(model=tiny_model(), x=tiny_images(4), steps=1, warmup=0, temperature=0.5),
     {"model": "obj", "x": "T0+", "steps": "n+", "warmup": "i0+", "temperature": "f0+", "device": "dev|o"})

# --- evaluate ------------------------------------------------------------------------------------------------
Spec("evaluate", "ssim_per_image", lambda: dict(x=tiny_images(2).repeat(1, 1, 2, 2), y=tiny_images(2).repeat(1, 1, 2, 2) * 0.9,
                                                data_range=1.0),
     {"x": "T|b", "y": "T|b", "data_range": "f+"})
Spec("evaluate", "latent_odi", lambda: dict(z=T(1.0, 2.0, 0.0, 5.0, 3.0, 1.0, shape=(3, 2)), eps=0.0),
     {"z": "T0+", "eps": "f0+"})
Spec("evaluate", "batch_odi", lambda: dict(model=tiny_model(), x=tiny_images(2), n_samples=4),
     {"model": "obj", "x": "T0+", "n_samples": "n+"})
Spec("evaluate", "evaluate", lambda: dict(model=tiny_model(), dataset=tiny_dataset(8), batch_size=4, odi_batch_size=2,
                                          odi_samples=4, progress=False),
     {"model": "obj", "dataset": "obj", "device": "dev|o", "batch_size": "n+", "dnr_threshold": "f0+",
      "data_range": "obj|o", "odi_batch_size": "i0+", "odi_samples": "n+"})
Spec("evaluate", "to_uint8_rgb", lambda: dict(images=tiny_images(2)), {"images": "T0+", "data_range": "obj"})
Spec("evaluate", "inception_weights", lambda: dict(weights=None, root=SCRATCH), {"weights": "path|o"})


class _Feat:
    pass


def _extractor():
    import torch.nn as nn

    class E(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 5)

        def forward(self, x): return self.lin(x.float().mean((-2, -1)))
    return E()


Spec("evaluate", "extract_features", lambda: dict(images=tiny_images(4), extractor=_extractor(), batch_size=2,
                                                  progress=False),
     {"images": "T0+", "extractor": "obj", "batch_size": "n+", "data_range": "obj", "device": "dev|o"})
Spec("evaluate", "feature_metrics", lambda: dict(real=feats(30, 4)[0].double(), fake=feats(30, 4, seed=1)[0].double(),
                                                 metrics=("fid", "kid"), kid_subsets=2, kid_subset_size=10),
     {"real": "T|b", "fake": "T|b", "metrics": "obj", "kid_subsets": "n+", "kid_subset_size": "n+", "kid_degree": "n+"})
Spec("evaluate", "representations", lambda: dict(model=tiny_model(), dataset=tiny_dataset(8), batch_size=4, progress=False),
     {"model": "obj", "dataset": "obj", "batch_size": "n+", "device": "dev|o"})
Spec("evaluate", "probe_accuracy", lambda: dict(features=feats()[0], labels=feats()[1], n_labels=(10,), n_pool=20,
                                                n_test=20, repeats=1, max_iter=50),
     {"features": "T", "labels": "obj", "n_labels": "obj", "n_pool": "n+", "n_test": "n+", "repeats": "n+", "C": "f+",
      "max_iter": "n+"})
Spec("evaluate", "knn_accuracy", lambda: dict(features=feats()[0], labels=feats()[1], k=3, n_train=20, n_test=20),
     {"features": "T", "labels": "obj", "k": "n+", "n_train": "n+", "n_test": "n+", "repeats": "n+"})
Spec("evaluate", "balanced_splits", lambda: dict(classes=(0, 1, 2, 3)), {"classes": "obj"})
Spec("evaluate", "shattering_dim", lambda: dict(features=feats(40, 4, 4)[0], labels=feats(40, 4, 4)[1], n_train=20,
                                                n_test=20, max_iter=50),
     {"features": "T", "labels": "obj", "n_train": "n+", "n_test": "n+", "C": "f+", "max_iter": "n+"})
Spec("evaluate", "model_samples", lambda: dict(model=tiny_model(), n=4, batch_size=2),
     {"model": "obj", "n": "n+", "batch_size": "n+", "device": "dev|o"})
Spec("evaluate", "tsne_embedding", lambda: dict(features=feats(20, 3)[0], perplexity=5.0),
     {"features": "T", "perplexity": "f+"})

# --- gradients -----------------------------------------------------------------------------------------------
_L = {"u": "T|b", "x": "T|b", "phi": "T|b"}
for _n in ("recon_loss_exact", "recon_grad_exact", "recon_hessian_exact"):
    Spec("gradients", _n, lin, dict(_L))
Spec("gradients", "hessian_quadratic", lambda: dict(v=T(1.0, -1.0, 0.5), **lin()), dict(_L, v="T|b"))
for _n in ("relaxed_loss_exact", "relaxed_grad_exact"):
    Spec("gradients", _n, lambda: dict(temperature=0.1, **lin()), dict(_L, temperature="f0+", indicator="str"))
Spec("gradients", "pathwise_grad", lambda: dict(temperature=0.1, n_samples=2, **lin()),
     dict(_L, temperature="f0+", method="str", n_samples="n+", upper_bound="i+|o"))
Spec("gradients", "score_grad", lambda: dict(n_samples=2, **lin()), dict(_L, n_samples="n+", baseline="str"))
Spec("gradients", "gradient_samples", lambda: dict(estimator="eat_cubic", temperature=0.1, n_samples=4, **lin()),
     dict(_L, estimator="str", temperature="f+|o", n_samples="n+", baseline="str"))


def _gsamples():
    return dict(samples=M("gradients").gradient_samples(estimator="eat_cubic", temperature=0.1, n_samples=4, **lin()),
                **lin())


Spec("gradients", "gradient_metrics", _gsamples, dict(_L, samples="T|b"))
Spec("gradients", "descent_terms", lambda: dict(lr=0.01, **_gsamples()), dict(_L, samples="T|b", lr="f+"))
Spec("gradients", "LinearPVAE", lambda: dict(n_inputs=4, n_latents=3),
     {"n_inputs": "n+", "n_latents": "n+", "dtype": "dtype", "device": "dev|o"})
Spec("gradients", "PVAEConfig", lambda: dict(n_latents=3, n_steps=2, batch_size=4),
     {"estimator": "str", "temperature": "f0+", "tau_start": "f+|o", "anneal_frac": "f0+", "n_latents": "n+",
      "n_steps": "i+", "batch_size": "n+", "lr": "f+", "warmup_steps": "i0+", "n_samples": "n+", "baseline": "str",
      "beta": "f0+", "clip": "f+", "eval_every": "i0+", "device": "dev|o", "dtype": "dtype"})


def _pvae_x(n=8, d=4):
    import torch
    return torch.rand(n, d, generator=torch.Generator().manual_seed(0))


Spec("gradients", "exact_elbo", lambda: dict(model=M("gradients").LinearPVAE(4, 3), x=_pvae_x(), batch_size=4),
     {"model": "obj", "x": "T|b", "batch_size": "n+"})
Spec("gradients", "train_linear_pvae",
     lambda: dict(x_train=_pvae_x(), x_valid=_pvae_x(4),
                  config=M("gradients").PVAEConfig(estimator="eat_cubic", n_latents=3, n_steps=2, batch_size=4)),
     {"x_train": "T|b", "x_valid": "T|b", "config": "obj|o"})
Spec("gradients", "gradient_sweep", lambda: dict(phi=lin()["phi"], x=lin()["x"], rates=(1.0,), taus=(0.1,), n_samples=4,
                                                 estimators={"eat_cubic": dict(estimator="eat_cubic")}),
     {"phi": "T|b", "x": "T|b", "rates": "ftup+", "taus": "ftup+", "n_samples": "n+", "estimators": "obj|o"})
Spec("gradients", "poisson_expectation_grad", lambda: dict(f=next(iter(M("gradients").TEST_FUNCTIONS.values())), rate=2.0),
     {"f": "fn", "rate": "f+", "tail": "f01"})
Spec("gradients", "relaxed_grad_samples",
     lambda: dict(f=next(iter(M("gradients").TEST_FUNCTIONS.values())), rate=2.0, temperature=0.1, n_samples=10),
     {"f": "fn", "rate": "f+", "temperature": "f0+", "method": "str", "n_samples": "n+", "upper_bound": "i+|o",
      "dtype": "dtype"})
Spec("gradients", "optimal_temperature_study", lambda: dict(rates=(1.0,), taus=(0.1,), methods=("eat_cubic",), n_mc=2,
                                                            n_repeats=2),
     {"functions": "obj|o", "rates": "ftup+", "taus": "ftup+", "methods": "obj", "n_mc": "n+", "n_repeats": "n+",
      "dtype": "dtype"})

# --- nb_gradients --------------------------------------------------------------------------------------------
_NL = dict(_L, r="T+|b")
_nl = lambda: dict(r=T(2.0, 3.0, 5.0), **lin())  # noqa: E731
for _n in ("nb_recon_loss_exact", "nb_recon_grad_exact"):
    Spec("nb_gradients", _n, _nl, dict(_NL))
Spec("nb_gradients", "nb_hessian_quadratic", lambda: dict(v=T(1.0, -1.0, 0.5), **_nl()), dict(_NL, v="T|b"))
Spec("nb_gradients", "nb_elbo_exact", lambda: dict(prior_logits=0.0, **_nl()), dict(_NL, prior_logits="f"))
for _n in ("nb_relaxed_loss_exact", "nb_relaxed_grad_exact"):
    Spec("nb_gradients", _n, lambda: dict(temperature=0.1, **_nl()), dict(_NL, temperature="f0+", indicator="str"))
Spec("nb_gradients", "nb_pathwise_grad", lambda: dict(temperature=0.1, n_samples=2, **_nl()),
     dict(_NL, temperature="f0+", method="str", n_samples="n+"))


def _nbsamples():
    d = _nl()
    s = M("nb_gradients").nb_pathwise_grad(temperature=0.1, n_samples=4, **d)
    return dict(samples=s, **d)


Spec("nb_gradients", "nb_gradient_metrics", _nbsamples, dict(_NL, samples="T|b"))
Spec("nb_gradients", "nb_gradient_sweep", lambda: dict(mean_rates=(2.0,), taus=(0.1,), methods=("eat_cubic",), n_latents=2,
                                                       n_pixels=3, n_items=2, n_samples=4),
     {"mean_rates": "ftup+", "taus": "ftup+", "methods": "obj", "n_latents": "n+", "n_pixels": "n+", "r": "f+",
      "n_items": "n+", "n_samples": "n+", "dtype": "dtype"})

# --- poglm ---------------------------------------------------------------------------------------------------
Spec("poglm", "glm_log_rate", lambda: dict(drive=T(-1.0, 0.0, 3.0), max_rate=10.0), {"drive": "T", "max_rate": "f+|o"})
Spec("poglm", "poisson_log_pmf", lambda: dict(value=T(0.0, 1.0, 3.0), log_rate=T(0.0, -1.0, 1.0)),
     {"value": "T0+|b", "log_rate": "T|b"})


def _wb(N=3, K=3):
    import torch
    g = torch.Generator().manual_seed(0)
    return dict(weight=torch.randn(N, N, K, generator=g) * 0.3, bias=torch.randn(N, generator=g) * 0.3)


Spec("poglm", "causal_drive", lambda: dict(spikes=poglm_visible(), **_wb()), {"spikes": "T0+|b", "weight": "T|b", "bias": "T|b"})
Spec("poglm", "simulate_poglm", lambda: dict(n_time_bins=10, n_sequences=2, **_wb()),
     {"weight": "T|b", "bias": "T|b", "n_time_bins": "n+", "n_sequences": "n+", "max_rate": "f+|o"})
Spec("poglm", "make_poglm_data", lambda: dict(n_sets=1, n_train=2, n_test=2, n_time_bins=10),
     {"n_sets": "n+", "n_visible": "n+", "n_hidden": "i0+", "n_lags": "n+", "n_train": "n+", "n_test": "n+",
      "n_time_bins": "n+", "weight_range": "f0+", "bias_range": "f0+", "max_rate": "f+|o", "dtype": "dtype", "device": "dev|o"})
Spec("poglm", "fit_observed_glm", lambda: dict(spikes=poglm_visible(), n_lags=3, max_iter=3),
     {"spikes": "T0+", "n_lags": "n+", "max_rate": "f+|o", "max_iter": "n+"})
Spec("poglm", "POGLM", lambda: dict(n_visible=3, n_hidden=2, n_lags=3),
     {"n_visible": "n+", "n_hidden": "n+", "n_lags": "n+", "encoder_kernel": "n+", "max_rate": "f+|o", "init_std": "f0+|o",
      "device": "dev|o", "dtype": "dtype"})
Spec("poglm", "sample_hidden", lambda: dict(log_rate_q=T(0.0, -1.0, 0.5, 1.0, shape=(2, 2)), n_samples=2, temperature=0.1),
     {"log_rate_q": "T", "n_samples": "n+", "estimator": "str", "temperature": "f0+", "tol": "f01"})
Spec("poglm", "elbo_samples", lambda: dict(model=poglm_model(), visible=poglm_visible(), n_samples=2, temperature=0.1),
     {"model": "obj", "visible": "T0+", "n_samples": "n+", "estimator": "str", "temperature": "f0+", "kl": "str", "tol": "f01"})
Spec("poglm", "elbo_surrogate",
     lambda: dict(samples=M("poglm").elbo_samples(poglm_model(), poglm_visible(), n_samples=2), estimator="eat_cubic"),
     {"samples": "obj", "estimator": "str", "baseline": "str"})
Spec("poglm", "importance_log_likelihood", lambda: dict(model=poglm_model(), visible=poglm_visible(), n_samples=4, chunk_size=2),
     {"model": "obj", "visible": "T0+", "n_samples": "n+", "chunk_size": "n+"})
Spec("poglm", "match_hidden", lambda: dict(weight_true=_wb(5)["weight"], weight_learned=_wb(5)["weight"] * 0.9, n_visible=3),
     {"weight_true": "T|b", "weight_learned": "T|b", "n_visible": "n+"})
Spec("poglm", "parameter_errors", lambda: dict(weight_true=_wb(5)["weight"], bias_true=_wb(5)["bias"],
                                               weight_learned=_wb(5)["weight"] * 0.9, bias_learned=_wb(5)["bias"], n_visible=3),
     {"weight_true": "T|b", "bias_true": "T|b", "weight_learned": "T|b", "bias_learned": "T|b", "n_visible": "n+"})
Spec("poglm", "evaluate_poglm", lambda: dict(model=poglm_model(), data=poglm_data(), n_samples=4, chunk_size=2),
     {"model": "obj", "data": "obj", "n_samples": "n+", "chunk_size": "n+"})
Spec("poglm", "FitConfig", lambda: dict(epochs=1),
     {"estimator": "str", "temperature": "f0+", "n_samples": "n+", "epochs": "i+", "batch_size": "n+", "lr": "f+",
      "weight_decay": "f0+", "init_std": "f0+|o", "kl": "str", "baseline": "str", "tol": "f01", "num_threads": "i+|o"})
Spec("poglm", "fit_poglm", lambda: dict(visible=poglm_visible(), n_hidden=2, config=M("poglm").FitConfig(epochs=1, batch_size=2)),
     {"visible": "T0+", "n_hidden": "n+", "config": "obj|o", "n_lags": "n+", "max_rate": "f+|o"})
Spec("poglm", "poglm_grid", lambda: dict(temperatures=(0.1,), score_samples=(2,), seeds=(0,), relaxed=("eat_cubic",)),
     {"temperatures": "ftup+", "score_samples": "obj", "seeds": "obj", "relaxed": "obj"})
Spec("poglm", "run_poglm_sweep", lambda: dict(data=poglm_data(), configs=[M("poglm").FitConfig(epochs=1, batch_size=2)],
                                              n_eval_samples=4),
     {"data": "obj", "configs": "obj", "n_eval_samples": "n+"})
Spec("poglm", "summarize_records", lambda: dict(records=records()), {"records": "obj", "metrics": "obj", "by": "obj"})
Spec("poglm", "best_temperatures", lambda: dict(records=records(), metric="elbo", n_samples=1),
     {"records": "obj", "metric": "str", "n_samples": "n+"})
Spec("poglm", "count_moments", lambda: dict(logits=T(-1.0, -2.0, -3.0, -1.5, -0.5, -4.0, shape=(2, 3))), {"logits": "T"})
Spec("poglm", "gsm_negative_binomial", lambda: dict(r=T(2.0, 5.0), p=T(0.3, 0.6), temperature=0.1),
     {"r": "T+|bh", "p": "T01|b", "temperature": "f0+", "n_categories": "n+|o", "tol": "f01", "sample_shape": "obj|o"})
Spec("poglm", "com_poisson_logits", lambda: dict(rate=T(1.0, 4.0), nu=T(0.5, 1.5), n_categories=20),
     {"rate": "T+|b", "nu": "T+|b", "n_categories": "n+"})
Spec("poglm", "gsm_com_poisson", lambda: dict(rate=T(1.0, 4.0), nu=T(0.5, 1.5), temperature=0.1),
     {"rate": "T+|bh", "nu": "T+|b", "temperature": "f0+", "n_categories": "n+|o", "tol": "f01"})

# --- benchmarks ----------------------------------------------------------------------------------------------
Spec("benchmarks", "measure", lambda: dict(fn=lambda: sum(range(100)), repeats=1), {"fn": "fn", "device": "dev", "repeats": "n+"})


def _eat_sampler(name):
    with M("benchmarks").eat_sampler(name):
        return M("relaxations").eat_poisson(T(2.0, 30.0), 0.1)


Spec("benchmarks", "eat_sampler", lambda: dict(name="window"), {"name": "str"}, call=_eat_sampler)
Spec("benchmarks", "relaxed_nb_step", lambda: dict(mean=2.0, temperature=0.1, batch=4, latents=3),
     call=lambda **kw: M("benchmarks").relaxed_nb_step(**kw)(), dom=
     {"mean": "f+", "temperature": "f0+", "sampler": "str", "indicator": "str", "batch": "n+", "latents": "n+", "r": "f+",
      "device": "dev"})
Spec("benchmarks", "bench_samplers", lambda: dict(means=(2.0,), temperatures=(0.1,), samplers=("window",), batch=4, latents=3,
                                                  progress=False),
     {"means": "ftup+", "temperatures": "ftup+", "samplers": "obj", "batch": "n+", "latents": "n+", "r": "f+",
      "device": "dev", "repeats": "n+"})
Spec("benchmarks", "format_rows",
     lambda: dict(rows=M("benchmarks").bench_samplers(means=(2.0,), temperatures=(0.1,), samplers=("window",), batch=4,
                                                      latents=3, progress=False)), {"rows": "obj"})
Spec("benchmarks", "bench_extremes", lambda: dict(rates=(100.0,), samplers=("window_cubic",), batch=4, progress=False),
     {"rates": "ftup+", "samplers": "obj", "batch": "n+", "temperature": "f0+", "repeats": "n+"})
Spec("benchmarks", "bench_training", lambda: dict(x=tiny_images(4), latents=4, arch="mlp", steps=1, samplers=("window",)),
     {"x": "T0+", "latents": "n+", "arch": "str", "temperature": "f0+", "pretrain": "i0+", "steps": "n+", "samplers": "obj",
      "device": "dev", "rounds": "n+"})
Spec("benchmarks", "main", lambda: dict(argv=["--help"]), {"argv": "obj|o"}, note="valid call exits via argparse --help")

# --- cli -----------------------------------------------------------------------------------------------------
Spec("cli", "resolve_settings", lambda: dict(explicit={}, saved=None), {"explicit": "obj", "saved": "obj|o"})
Spec("cli", "resolve_settings(field)", lambda: dict(lr=0.005, seed=0, n_samples=1, tau_start=1.0, tau_end=0.1),
     {"lr": "f+", "seed": "i0+", "n_samples": "n+", "tau_start": "f+", "tau_end": "f+"},
     call=lambda **kw: M("cli").resolve_settings(kw))
Spec("cli", "make_model", lambda: dict(s=M("cli").resolve_settings({})), {"s": "obj"})
Spec("cli", "make_config", lambda: dict(s=M("cli").resolve_settings({}), run_dir=scratch("run")), {"s": "obj", "run_dir": "obj"})
Spec("cli", "check_run_name", lambda: dict(name="run1"), {"name": "str"})


def _lock(run_dir):
    with M("cli").run_lock(run_dir) as lk:
        return str(lk)


def _rundir():
    p = scratch("lockrun")
    os.makedirs(p, exist_ok=True)
    return p


Spec("cli", "run_lock", lambda: dict(run_dir=_rundir()), {"run_dir": "path"}, call=_lock)
Spec("cli", "bench", lambda: dict(dataset="digits", arch="mlp", latents=4, hidden=8, batch_size=4, steps=1, warmup=0,
                                  devices=["cpu"]),
     {"dataset": "str", "arch": "str", "latents": "n+", "hidden": "n+", "batch_size": "n+", "steps": "n+", "warmup": "i0+",
      "devices": "obj|o", "temperature": "f0+"})
Spec("cli", "format_table", lambda: dict(rows=[{"device": "cpu", "images/s": 10.0}]), {"rows": "obj"})
Spec("cli", "main", lambda: dict(argv=["--help"]), {"argv": "obj|o"}, note="valid call exits via argparse --help")

SKIPPED = {
    "plotting (draw only)": "plot_nb_vs_poisson plot_indicators plot_eat_schematic plot_relaxed_nb plot_moment_factors "
                            "plot_moment_ratios plot_wasserstein plot_relaxed_nb_moments plot_kl_dispersion_sharing "
                            "plot_whitening show_examples plot_schedules image_grid reconstruction_grid sample_grid "
                            "tsne_figure plot_gradient_quality plot_gradient_rates plot_raw_bias_variance "
                            "plot_optimal_temperature plot_elbo_vs_tau plot_dictionaries plot_poglm_metrics "
                            "plot_poglm_best_tau",
    "result containers / exceptions": "RelaxationSweep VAEOutput DatasetInfo DataNotFoundError DataCorruptError "
                                      "TrainingStopped NonFiniteLossError FitResult Score GradientMetrics PVAEResult "
                                      "GradientSweep TemperatureStudy POGLMData ELBOSamples RunInUseError RunEvaluationError",
    "needs weights / trains > 1 s": "inception generation_metrics train_run",
    "no arguments": "capture_rng_state",
}


# ----------------------------------------------------------------------------------------------------------------
# Worker: runs cases read from stdin (one JSON per line), answers one JSON per line on the saved stdout.
# ----------------------------------------------------------------------------------------------------------------
def _finite(obj, depth=0):
    import dataclasses
    import numpy as np
    import torch
    if depth > 4:
        return True
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() or obj.is_complex():
            return bool(torch.isfinite(obj.detach()).all())
        return True
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, np.ndarray):
        return bool(np.isfinite(obj).all()) if obj.dtype.kind in "fc" else True
    if isinstance(obj, torch.nn.Module):
        return all(_finite(p, depth + 1) for p in obj.parameters())
    if isinstance(obj, torch.distributions.Distribution):
        return all(_finite(v, depth + 1) for v in vars(obj).values() if isinstance(v, torch.Tensor))
    if isinstance(obj, dict):
        return all(_finite(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite(v, depth + 1) for v in list(obj)[:1000])
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return all(_finite(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj))
    return True


def _summary(obj):
    import torch
    if isinstance(obj, torch.Tensor):
        return f"Tensor{tuple(obj.shape)} {str(obj.dtype).replace('torch.', '')}"
    s = type(obj).__name__
    return s if not isinstance(obj, (int, float, str)) else f"{s} {obj!r}"[:60]


def run_case(spec, mut):
    import warnings
    kwargs = spec.make()
    if mut is not None:
        arg, label = mut
        fn = dict((x[0], x[1]) for x in mutations(spec.dom[arg]))[label]
        kwargs[arg] = fn(kwargs.get(arg, _default(spec, arg)))
    call = spec.call or getattr(M(spec.module), spec.name)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = call(**kwargs)
    return out, [str(x.message).splitlines()[0][:120] for x in w][:3]


def _default(spec, arg):
    import inspect
    call = spec.call or getattr(M(spec.module), spec.name)
    p = inspect.signature(call).parameters.get(arg)
    return None if p is None else p.default


def worker():
    import resource
    import torch
    torch.set_num_threads(1)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import matplotlib
    matplotlib.use("Agg")
    for m in MODULES:
        M(m)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
    cap = vm + int(float(os.environ.get("FUZZ_MEM_GB", "4")) * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out.write(json.dumps({"ready": True}) + "\n")
    by_key = {s.key: s for s in SPECS}
    for line in sys.stdin:
        req = json.loads(line)
        spec = by_key[req["spec"]]
        t0 = time.time()
        res = {}
        try:
            o, warns = run_case(spec, req["mut"])
            res = dict(ok=True, finite=_finite(o), result=_summary(o), warnings=warns)
        except BaseException as e:  # noqa: BLE001 - SystemExit from argparse included
            if isinstance(e, KeyboardInterrupt):
                raise
            msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            res = dict(ok=False, exc=type(e).__name__, mro=[c.__name__ for c in type(e).__mro__], msg=msg)
        res["seconds"] = round(time.time() - t0, 3)
        out.write(json.dumps(res) + "\n")


# ----------------------------------------------------------------------------------------------------------------
# Parent: enumerate cases, drive workers with a timeout, classify.
# ----------------------------------------------------------------------------------------------------------------
DOCUMENTED = ("ValueError", "FileNotFoundError", "DataNotFoundError", "DataCorruptError", "NotADirectoryError")


class Pool:
    def __init__(self, timeout):
        self.timeout, self.proc = timeout, None

    def start(self):
        env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.err = open(os.path.join(SCRATCH, "worker_stderr.txt"), "ab")
        self.proc = subprocess.Popen([sys.executable, HERE, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, bufsize=1, env=env, cwd=SCRATCH)  # relative paths land in the scratch folder
        r = self._read(120)
        if not (r and r.get("ready")):
            raise RuntimeError(f"worker did not start: {r}")

    def _read(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return "TIMEOUT"
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, spec_key, mut):
        if self.proc is None:
            self.start()
        try:
            self.proc.stdin.write(json.dumps({"spec": spec_key, "mut": mut}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.stop()
            return dict(ok=False, exc="WorkerDied", msg="broken pipe", mro=[])
        r = self._read(self.timeout)
        if r == "TIMEOUT":
            self.stop()
            return dict(ok=False, exc="Timeout", msg=f"no answer within {self.timeout} s", mro=[])
        if r is None:
            rc = self.proc.wait()
            self.proc = None
            return dict(ok=False, exc="Crash", msg=f"worker exited with {rc}", mro=[])
        return r


def names_param(msg, arg):
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(arg)}(?![A-Za-z0-9_])", msg or "") is not None


def classify(res, arg, strict, base_finite=True):
    if res.get("ok"):
        if strict:
            return "SILENT"
        return "OK-VALID" if (res["finite"] or not base_finite) else "SILENT"
    mro = res.get("mro", [])
    if any(c in DOCUMENTED for c in mro) and names_param(res.get("msg"), arg):
        return "CLEAR"
    return "UNCLEAR"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write all cases here")
    ap.add_argument("--module", action="append", help="only these modules (repeatable)")
    ap.add_argument("--only", help="only specs whose name contains this")
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--mem-gb", type=float, default=4.0)
    ap.add_argument("--base-only", action="store_true", help="only the valid calls (check the table)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only non-CLEAR cases")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker()
    os.makedirs(SCRATCH, exist_ok=True)
    os.environ["FUZZ_MEM_GB"] = str(a.mem_gb)
    mods = a.module or MODULES
    bad = [m for m in mods if m not in MODULES]
    if bad:
        ap.error(f"unknown module(s) {bad}; choose from {MODULES}")
    pool, rows, t_start = Pool(a.timeout), [], time.time()
    for spec in SPECS:
        if spec.module not in mods or (a.only and a.only not in spec.name):
            continue
        base = pool.run(spec.key, None)
        ok = base.get("ok") or (spec.note and "exit" in spec.note and base.get("exc") == "SystemExit") or \
            (spec.note and "DataNotFoundError" in spec.note and base.get("exc") == "DataNotFoundError")
        row = dict(module=spec.module, call=spec.name, arg=None, mutation="valid", strict=False, **base)
        row["outcome"] = "BASE-OK" if ok else "BASE-FAIL"
        rows.append(row)
        _print(row, a.quiet)
        if not ok or a.base_only:
            continue
        base_finite = base.get("finite", True)
        for arg, domain in spec.dom.items():
            muts = mutations_meta(domain)
            for label, strict in muts:
                res = pool.run(spec.key, [arg, label])
                row = dict(module=spec.module, call=spec.name, arg=arg, mutation=label, strict=strict, **res)
                row["outcome"] = classify(res, arg, strict, base_finite)
                rows.append(row)
                _print(row, a.quiet)
    pool.stop()
    report(rows, time.time() - t_start)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


_META_CACHE = {}


def mutations_meta(domain):
    if domain not in _META_CACHE:
        _META_CACHE[domain] = [(x[0], x[2]) for x in mutations(domain)]
    return _META_CACHE[domain]


def _desc(r):
    if r["mutation"] == "valid":
        return f"{r['module']}.{r['call']}(valid)"
    return f"{r['module']}.{r['call']}({r['arg']}={r['mutation']})"


def _what(r):
    if r.get("ok"):
        return f"returned {r.get('result')}{'' if r.get('finite', True) else ' NON-FINITE'}"
    return f"{r.get('exc')}: {r.get('msg')}"


def _print(r, quiet):
    if quiet and r["outcome"] in ("CLEAR", "OK-VALID", "BASE-OK"):
        return
    print(f"{r['outcome']:9s} {_desc(r):70s} {_what(r)[:160]}", flush=True)


def report(rows, seconds):
    outcomes = ["CLEAR", "UNCLEAR", "SILENT", "OK-VALID", "BASE-FAIL"]
    mods = [m for m in MODULES if any(r["module"] == m for r in rows)]
    print(f"\n== summary ({len(rows)} calls, {seconds:.0f} s) ==")
    print(f"{'module':14s}" + "".join(f"{o:>10s}" for o in outcomes) + f"{'specs':>8s}")
    tot = dict.fromkeys(outcomes, 0)
    for m in mods:
        c = {o: sum(r["module"] == m and r["outcome"] == o for r in rows) for o in outcomes}
        n = sum(r["module"] == m and r["mutation"] == "valid" for r in rows)
        for o in outcomes:
            tot[o] += c[o]
        print(f"{m:14s}" + "".join(f"{c[o]:>10d}" for o in outcomes) + f"{n:>8d}")
    print(f"{'TOTAL':14s}" + "".join(f"{tot[o]:>10d}" for o in outcomes))
    for o in ("BASE-FAIL", "UNCLEAR", "SILENT"):
        sel = [r for r in rows if r["outcome"] == o]
        if sel:
            print(f"\n== {o} ({len(sel)}) ==")
            for r in sel:
                print(f"  {_desc(r):70s} {_what(r)[:200]}")
    print("\nskipped:", "; ".join(f"{k}: {v}" for k, v in SKIPPED.items()))


if __name__ == "__main__":
    sys.exit(main())
