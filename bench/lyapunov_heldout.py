"""Largest Lyapunov exponents of 14 systems NOT in the literature table (tests/chaos_systems.py): a held-out check.

    python bench/lyapunov_heldout.py [--units 1e5]      (about 10 minutes; writes heldout_lyapunov.md here)

Five maps (cubic, Gauss, Kaplan-Yorke, Holmes' Duffing map, Burgers) and nine flows (Thomas, Halvorsen, Sprott B,
Arneodo, Moore-Spiegel, Rabinovich-Fabrikant, the forced two-well Duffing and Van der Pol oscillators, Sprott's
quadratic jerk), N = 10,000 samples of one coordinate (flows: about 35 samples per mean orbit, and for three of
them half and twice that interval), clean and with 1 % noise; `largest_lyapunov(x, dt)` with its defaults, nothing
tuned. References computed on the equations as in ``bench/lyapunov_references.py`` (two trajectories, 40 blocks;
the Gauss and Kaplan-Yorke maps, discontinuous, by their exact Jacobians). Three are exact (ln 3, pi^2/(6 ln 2),
ln 2). Written for a review on 2026-12-05; its table is in the README.
"""
import json, math, sys, tempfile, time
from pathlib import Path
import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from midstream_tui.analysis.dynamics import largest_lyapunov

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lyapunov_references import _map_orbit  # noqa: E402
from lyapunov_references import map_exponent as _reference_map_exponent  # noqa: E402

EPS = 1e-8
BLOCKS = 40
N = 10_000
NOISE = 0.01
SEED = 20240601

# ---------------------------------------------------------------- flows
@njit(cache=True)
def field(k, p, s):
    x, y, z = s[0], s[1], s[2]
    o = np.empty(3)
    if k == 0:  # Thomas cyclically symmetric
        b = p[0]
        o[0] = math.sin(y) - b * x; o[1] = math.sin(z) - b * y; o[2] = math.sin(x) - b * z
    elif k == 1:  # Halvorsen
        a = p[0]
        o[0] = -a * x - 4 * y - 4 * z - y * y
        o[1] = -a * y - 4 * z - 4 * x - z * z
        o[2] = -a * z - 4 * x - 4 * y - x * x
    elif k == 2:  # Sprott B
        o[0] = y * z; o[1] = x - y; o[2] = 1 - x * y
    elif k == 3:  # Arneodo x'''= -a x - b x' - c x'' + d x^3 (a<0, d<0)
        o[0] = y; o[1] = z; o[2] = -p[0] * x - p[1] * y - p[2] * z + p[3] * x ** 3
    elif k == 4:  # Moore-Spiegel
        T, R = p[0], p[1]
        o[0] = y; o[1] = z; o[2] = -z - (T - R + R * x * x) * y - T * x
    elif k == 5:  # Rabinovich-Fabrikant
        g, al = p[0], p[1]
        o[0] = y * (z - 1 + x * x) + g * x
        o[1] = x * (3 * z + 1 - x * x) + g * y
        o[2] = -2 * z * (al + x * y)
    elif k == 6:  # Duffing two-well, forced: x'' + d x' - x + x^3 = A cos(w t); s[2] = phase
        o[0] = y; o[1] = -p[0] * y + x - x ** 3 + p[1] * math.cos(z); o[2] = p[2]
    elif k == 7:  # forced van der Pol: x'' - b(1-x^2)x' + x = A sin(w t)
        o[0] = y; o[1] = p[0] * (1 - x * x) * y - x + p[1] * math.sin(z); o[2] = p[2]
    else:  # Sprott's simplest quadratic jerk: x''' + A x'' - x'^2 + x = 0
        o[0] = y; o[1] = z; o[2] = -p[0] * z + y * y - x
    return o


@njit(cache=True)
def rk4(k, p, s, h):
    k1 = field(k, p, s)
    k2 = field(k, p, s + 0.5 * h * k1)
    k3 = field(k, p, s + 0.5 * h * k2)
    k4 = field(k, p, s + h * k3)
    return s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@njit(cache=True)
def flow_series(k, p, s0, dt, n, substeps, transient_units):
    s = s0.copy()
    h = dt / substeps
    for _ in range(int(transient_units / h)):
        s = rk4(k, p, s, h)
    out = np.empty(n)
    for i in range(n):
        for _ in range(substeps):
            s = rk4(k, p, s, h)
        out[i] = s[0]
    return out


@njit(cache=True)
def flow_exponent(k, p, s, h, units):
    for _ in range(int(1000 / h)):
        s = rk4(k, p, s, h)
    u = s.copy()
    u[0] += EPS  # (forced systems: third coordinate is the phase, never perturbed)
    every = max(1, int(round(1.0 / h)))
    per = int(units / BLOCKS / h) // every * every
    out = np.zeros(BLOCKS)
    for q in range(BLOCKS):
        acc = 0.0
        for i in range(per):
            s = rk4(k, p, s, h)
            u = rk4(k, p, u, h)
            if (i + 1) % every == 0:
                d = math.sqrt(np.sum((u - s) ** 2))
                acc += math.log(d / EPS)
                u = s + (u - s) * (EPS / d)
        out[q] = acc / (per * h)
    return out


# name, kind, params, param text, start, RK4 max step, published value (None if not sure), source note
FLOWS = [
    ("Thomas", 0, (0.18,), "b=0.18", (0.1, 0.0, 0.0), 0.01, None, ""),
    ("Halvorsen", 1, (1.27,), "a=1.27", (-5.0, 0.0, 0.0), 0.005, None, ""),
    ("Sprott B", 2, (0.0,), "x'=yz,y'=x-y,z'=1-xy", (0.1, 0.1, 0.1), 0.01, 0.210, "Sprott 1994 (recalled)"),
    ("Arneodo", 3, (-5.5, 3.5, 1.0, -1.0), "a=-5.5,b=3.5,c=1,d=-1", (-0.2, 0.0, 0.0), 0.005, None, ""),
    ("Moore-Spiegel", 4, (6.0, 20.0), "T=6,R=20", (0.1, 0.0, 0.0), 0.005, None, ""),
    ("Rabinovich-Fabrikant", 5, (0.87, 1.1), "gamma=0.87,alpha=1.1", (-1.0, 0.0, 0.5), 0.002, None, ""),
    ("Duffing two-well forced", 6, (0.25, 0.3, 1.0), "d=0.25,A=0.3,w=1", (1.0, 0.0, 0.0), 0.01, None, ""),
    ("Van der Pol forced", 7, (3.0, 5.0, 1.788), "b=3,A=5,w=1.788", (0.1, 0.0, 0.0), 0.005, None, ""),
    ("Sprott jerk", 8, (2.017,), "A=2.017", (-1.0, 0.0, 0.0), 0.01, None, ""),
]
DT_VARIANTS = ["Halvorsen", "Sprott B", "Duffing two-well forced"]  # chosen before any estimate was seen

# ---------------------------------------------------------------- maps
# (their steps and the two-trajectory exponent are bench/lyapunov_references.py's, kinds 7-9)
MAP_KIND = {0: 7, 1: 8, 2: 9}


def map_series(k, x, y, n):
    return _map_orbit(MAP_KIND[k], x, y, n + 10_000)[10_000:].copy()


def map_exponent(k, x, y, n):
    return _reference_map_exponent(MAP_KIND[k], x, y, n)


@njit(cache=True)
def gauss_exponent(x, n):
    """Gauss map x' = frac(1/x), tangent: |d/dx| = 1/x^2."""
    out = np.zeros(BLOCKS)
    per = n // BLOCKS
    for _ in range(1000):
        x = 1.0 / x; x -= math.floor(x)
        if x == 0.0: x = 0.5 ** 0.5
    for q in range(BLOCKS):
        acc = 0.0
        for _ in range(per):
            acc += -2.0 * math.log(x)
            x = 1.0 / x; x -= math.floor(x)
            if x == 0.0: x = 0.5 ** 0.5
        out[q] = acc / per
    return out


@njit(cache=True)
def gauss_series(x, n):
    for _ in range(1000):
        x = 1.0 / x; x -= math.floor(x)
        if x == 0.0: x = 0.5 ** 0.5
    out = np.empty(n)
    for i in range(n):
        x = 1.0 / x; x -= math.floor(x)
        if x == 0.0: x = 0.5 ** 0.5
        out[i] = x
    return out


def ky_xs(n, seed=7):
    """Doubling-map orbit of a random real: x_i = 0.b_i b_{i+1} ... (53 bits), avoiding float collapse."""
    bits = np.random.default_rng(seed).integers(0, 2, n + 64).astype(np.float64)
    w = 0.5 ** np.arange(1, 54)
    return np.array([bits[i:i + 53] @ w for i in range(n)])


@njit(cache=True)
def ky_exponent(xs, alpha):
    """Kaplan-Yorke map x'=2x mod 1, y'=alpha y + cos(4 pi x): tangent vector with the exact Jacobian."""
    n = xs.size
    per = n // BLOCKS
    out = np.zeros(BLOCKS)
    u, v = 1.0, 1.0
    i = 0
    for q in range(BLOCKS):
        acc = 0.0
        for _ in range(per):
            x = xs[i]; i += 1
            u, v = 2.0 * u, -4 * math.pi * math.sin(4 * math.pi * x) * u + alpha * v
            d = math.hypot(u, v)
            acc += math.log(d)
            u /= d; v /= d
        out[q] = acc / per
    return out


def ky_series(n, alpha=0.2):
    xs = ky_xs(n + 1000)
    y = 0.0
    out = np.empty(n + 1000)
    for i in range(n + 1000):
        y = alpha * y + math.cos(4 * math.pi * xs[i])
        out[i] = y
    return out[1000:]


# ---------------------------------------------------------------- helpers
def orbit_time(k, p, s0, h):
    """Mean time between local maxima of x (prelim run, 2000 time units after 500 of transient)."""
    x = flow_series(k, np.array(p), np.array(s0), h, int(2000 / h), 1, 500.0)
    mx = np.sum((x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:]))
    return 2000.0 / max(mx, 1), float(np.max(np.abs(x)))


def round2(v):
    e = math.floor(math.log10(v))
    return round(v / 10 ** e, 1) * 10 ** e


def estimate(x, dt):
    out = {}
    rng = np.random.default_rng(SEED)
    for tag, series in (("clean", x), ("noisy", x + NOISE * np.std(x) * rng.standard_normal(x.size))):
        t = time.time()
        try:
            r = largest_lyapunov(series, dt)
            out[tag] = dict(lyap=float(r.lyapunov), reliable=bool(r.reliable), why=r.unreliable or "",
                            method=r.method, secs=round(time.time() - t, 2), dim=int(r.dim), lag=int(r.lag),
                            period=int(r.period) if r.period else 0,
                            rosen=float(getattr(r, "rosenstein", math.nan)))
        except Exception as exc:  # noqa: BLE001
            out[tag] = dict(lyap=math.nan, reliable=False, why=f"error: {exc}", method="", secs=0)
    return out


def main():
    units = float(sys.argv[sys.argv.index("--units") + 1]) if "--units" in sys.argv else 1e5
    # references cached here during a run; made by the run, not on import (classify_in_noise imports this module)
    out = Path(tempfile.mkdtemp(prefix="heldout-lyapunov-"))
    print(f"references and results in {out}", flush=True)
    refs_path = out / "refs.json"
    refs = json.loads(refs_path.read_text()) if refs_path.exists() else {}
    rows = []
    # maps
    MAPS = [("cubic map", "x'=3x(1-x^2)", math.log(3), "ln 3 (conjugate to Chebyshev T3)"),
            ("Gauss map", "x'=frac(1/x)", math.pi ** 2 / (6 * math.log(2)), "pi^2/(6 ln 2) (exact)"),
            ("Kaplan-Yorke map", "alpha=0.2, observe y", math.log(2), "ln 2 (exact)"),
            ("Duffing (Holmes) map", "a=2.75,b=0.2", None, ""),
            ("Burgers map", "a=0.75,b=1.75", None, "")]
    for name, ptxt, pub, src in MAPS:
        t = time.time()
        if name not in refs:
            if name == "Gauss map":
                b = gauss_exponent(0.3183, 10_000_000)
            elif name == "Kaplan-Yorke map":
                b = ky_exponent(ky_xs(10_000_000), 0.2)
            else:
                k = {"cubic map": 0, "Duffing (Holmes) map": 1, "Burgers map": 2}[name]
                st = {0: (0.3, 0.0), 1: (0.1, 0.1), 2: (-0.1, 0.1)}[k]
                b = map_exponent(k, st[0], st[1], 10_000_000)
            refs[name] = dict(ref=float(b.mean()), se=float(b.std(ddof=1) / math.sqrt(BLOCKS)), units=1e7)
            refs_path.write_text(json.dumps(refs, indent=1))
        if name == "Gauss map":
            x = gauss_series(0.3183, N)
        elif name == "Kaplan-Yorke map":
            x = ky_series(N)
        else:
            k = {"cubic map": 0, "Duffing (Holmes) map": 1, "Burgers map": 2}[name]
            st = {0: (0.3, 0.0), 1: (0.1, 0.1), 2: (-0.1, 0.1)}[k]
            x = map_series(k, st[0], st[1], N)
        rows.append(dict(name=name, params=ptxt, dt=1.0, spo=None, pub=pub, src=src, **refs[name],
                         std=float(np.std(x)), finite=bool(np.all(np.isfinite(x))), **estimate(x, 1.0)))
        print(name, refs[name], rows[-1]["clean"], rows[-1]["noisy"], f"{time.time()-t:.1f}s", flush=True)
    # flows
    for name, k, p, ptxt, s0, h, pub, src in FLOWS:
        t = time.time()
        P, S = np.array(p, float), np.array(s0, float)
        T, amp = orbit_time(k, p, s0, h)
        dt = round2(T / 35)
        if name not in refs:
            b = flow_exponent(k, P, S, h, units)
            refs[name] = dict(ref=float(b.mean()), se=float(b.std(ddof=1) / math.sqrt(BLOCKS)), units=units)
            refs_path.write_text(json.dumps(refs, indent=1))
        variants = [dt] + ([dt / 2, dt * 2] if name in DT_VARIANTS else [])
        for d in variants:
            sub = max(1, math.ceil(d / h - 1e-9))
            x = flow_series(k, P, S, d, N, sub, 1000.0)
            rows.append(dict(name=name, params=ptxt, dt=d, spo=T / d, pub=pub, src=src, **refs[name],
                             std=float(np.std(x)), finite=bool(np.all(np.isfinite(x))), orbit=T, amp=amp,
                             **estimate(x, d)))
            print(name, d, f"orbit {T:.3f}", refs[name], rows[-1]["clean"], rows[-1]["noisy"],
                  f"{time.time()-t:.1f}s", flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    table(rows)


def table(rows):
    lines = ["| system | parameters | dt | samples/orbit | reference (computed ± SE) | published | "
             "clean est. | clean rel.err | clean verdict | noisy est. | noisy rel.err | noisy verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = r["ref"]
        cells = []
        for tag in ("clean", "noisy"):
            e = r[tag]
            rel = (e["lyap"] - ref) / ref if math.isfinite(e["lyap"]) else math.nan
            verdict = f"reliable ({e['method']})" if e["reliable"] else f"UNRELIABLE ({e['method']}): {e['why']}"
            cells += [f"{e['lyap']:.4g}", f"{100*rel:+.1f}%", verdict]
        pub = f"{r['pub']:.4g} {r['src']}" if r["pub"] is not None else "—"
        spo = f"{r['spo']:.0f}" if r["spo"] else "map"
        lines.append(f"| {r['name']} | {r['params']} | {r['dt']:.4g} | {spo} | {ref:.4f} ± {r['se']:.4f} | {pub} | "
                     + " | ".join(cells) + " |")
    Path("heldout_lyapunov.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
