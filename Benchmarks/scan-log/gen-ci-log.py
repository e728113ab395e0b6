#!/usr/bin/env python3
"""Writes a realistic GitHub Actions-style CI build log of about SIZE bytes and a secrets file.

    python3 gen-ci-log.py OUT.log SECRETS.json [--size 1G] [--secrets 1000] [--leaks 300] [--seed 1]

Every line starts with a GitHub Actions timestamp (`2024-05-10T17:46:49.0654321Z `). The
content is a mix of what build logs hold: ##[group] markers, ANSI-coloured tool output,
package installs, compiler and test lines, docker build steps, git output, URLs, sha256
digests (hex), wrapped base64 blobs, JSON lines, long minified lines. The secrets file is
a JSON object of NAME -> {"value": ..., "path": ...} with SECRETS random secrets (16 to 64
bytes, a fifth with punctuation). LEAKS of them are written into the log in various
encodings (raw, base64 at each offset, hex, percent, JSON, split over two lines, truncated,
wrapped base64, between ANSI codes) plus a few generic-detector baits (AWS's documented
example key, a fake GitHub token); the list of leaks goes to SECRETS.json.leaks (names and
encodings, no values) so a run can be checked.
"""
import argparse, base64, json, random, sys, urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("out"); ap.add_argument("secrets")
ap.add_argument("--size", default="1G"); ap.add_argument("--secrets-count", "--secrets-n", dest="n", type=int, default=1000)
ap.add_argument("--leaks", type=int, default=300); ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
size = int(a.size[:-1]) * mult[a.size[-1]] if a.size[-1] in mult else int(a.size)
rng = random.Random(a.seed)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
PUNCT = "!#$%&*+-./:;<=>?@^_~ "

def tok(n, alphabet=ALNUM):
    return "".join(rng.choice(alphabet) for _ in range(n))

secrets = {}
for i in range(a.n):
    n = rng.randint(16, 64)
    v = tok(n, ALNUM + PUNCT) if i % 5 == 0 else tok(n)
    secrets[f"CI_SECRET_{i:04d}"] = {"value": v, "path": f"secret/data/ci/app{i % 37}/key{i}"}

words = ("install build compile link test deploy cache restore upload artifact module package resolve fetch "
         "checkout configure generate bundle lint format verify sign publish release warning info debug").split()
pkgs = ["@babel/core", "react", "typescript", "eslint", "lodash", "webpack", "jest", "numpy", "requests", "pytest",
        "swift-nio", "grpcio", "protobuf", "urllib3", "cryptography", "openssl", "libssl3", "zlib1g", "tokio", "serde"]
files = [f"Sources/{m}/{f}.swift" for m in ("Core", "Server", "Store", "Trail") for f in ("Event", "Index", "Handler", "Router", "Codec", "Config")]

def line_pool():
    pool = []
    for _ in range(40000):
        k = rng.random()
        if k < 0.12:
            pool.append(f"\x1b[36;1m{rng.choice(words)}\x1b[0m {rng.choice(pkgs)}@{rng.randint(0,20)}.{rng.randint(0,30)}.{rng.randint(0,99)} {rng.choice(words)}ed in {rng.randint(1,9999)}ms")
        elif k < 0.22:
            pool.append(f"[{rng.randint(1,900)}/{rng.randint(900,1500)}] Compiling {rng.choice(['CustosCore','NIOCore','Crypto','GRDB'])} {rng.choice(files)}")
        elif k < 0.30:
            pool.append(f"#{rng.randint(1,40)} [build {rng.randint(1,9)}/9] RUN {rng.choice(['apt-get install -y','pip install','npm ci','swift build -c release'])} {rng.choice(pkgs)}")
        elif k < 0.36:
            pool.append(f"#{rng.randint(1,40)} sha256:{tok(64, '0123456789abcdef')} {rng.randint(1,400)}.{rng.randint(0,9)}MB / {rng.randint(400,900)}MB {rng.randint(0,59)}.{rng.randint(0,9)}s")
        elif k < 0.44:
            pool.append(f"\x1b[32m✓\x1b[0m {rng.choice(words)}_{rng.choice(words)}_{rng.randint(1,999)} \x1b[90m({rng.randint(1,999)}ms)\x1b[0m")
        elif k < 0.50:
            pool.append(f"remote: Counting objects: {rng.randint(1,100)}% ({rng.randint(1,5000)}/{rng.randint(5000,9000)}), done.")
        elif k < 0.56:
            pool.append(f"Downloading https://registry.npmjs.org/{rng.choice(pkgs)}/-/{rng.choice(pkgs).strip('@').replace('/','-')}-{rng.randint(0,9)}.{rng.randint(0,9)}.{rng.randint(0,9)}.tgz?sig={tok(22)}")
        elif k < 0.62:
            pool.append(json.dumps({"level": rng.choice(["info", "warn", "debug"]), "msg": " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))),
                                    "request_id": tok(26), "duration_ms": rng.randint(1, 5000)}))
        elif k < 0.66:
            pool.append(base64.b64encode(bytes(rng.getrandbits(8) for _ in range(57))).decode())  # a 76-column base64 line
        elif k < 0.67:
            pool.append(" ".join(tok(rng.randint(2, 12)) for _ in range(rng.randint(200, 800))))  # a long minified line
        elif k < 0.70:
            pool.append(f"##[group]Run {rng.choice(words)} {rng.choice(pkgs)}")
        elif k < 0.72:
            pool.append("##[endgroup]")
        elif k < 0.80:
            pool.append(f"  {rng.choice(files)}:{rng.randint(1,900)}:{rng.randint(1,80)}: warning: variable '{tok(8).lower()}' was never mutated; consider changing to 'let' constant")
        else:
            pool.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 16))))
    return pool

pool = line_pool()
names = list(secrets)
leaked = rng.sample(names, min(a.leaks, len(names)))
encodings = ["raw", "b64-0", "b64-1", "b64-2", "hex", "percent", "json", "split", "truncated", "wrapped", "ansi"]

def leak(name, enc):
    v = secrets[name]["value"]
    if enc == "raw": return [f"+ echo {v}"]
    if enc.startswith("b64-"):
        k = int(enc[-1]); return ["Authorization: Basic " + base64.b64encode((("u:" if k == 2 else "x" if k == 1 else "") + v).encode()).decode()]
    if enc == "hex": return ["payload: " + v.encode().hex()]
    if enc == "percent": return ["GET /api?key=" + urllib.parse.quote(v, safe="") + " HTTP/1.1"]
    if enc == "json": return [json.dumps({"token": v, "ok": True})]
    if enc == "split": return ["value: " + v[:len(v) // 2], v[len(v) // 2:] + " (continued)"]
    if enc == "truncated": return ["preview: " + v[2:16] + "..."]
    if enc == "wrapped":
        b = base64.b64encode(("#" * 40 + v + "!" * 30).encode()).decode()
        return [b[i:i + 76] for i in range(0, len(b), 76)]
    if enc == "ansi": return [f"\x1b[31m{v[:8]}\x1b[0m\x1b[1m{v[8:]}\x1b[0m"]

# Leak positions spread over the log (by byte offset).
targets = sorted(rng.randrange(size) for _ in leaked)
plan = [(t, name, encodings[i % len(encodings)]) for i, (t, name) in enumerate(zip(targets, leaked))]
baits = sorted(rng.randrange(size) for _ in range(5))

written = 0
sec = 0
frac = 0
pi = bi = 0
with open(a.out, "w", encoding="utf-8", newline="\n") as f:
    batch = []
    while written < size:
        for _ in range(2000):
            frac += 7919
            if frac >= 10_000_000: frac -= 10_000_000; sec += 1
            ts = f"2024-05-10T{17 + sec // 3600 % 7:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{frac:07d}Z "
            lines = None
            if pi < len(plan) and written >= plan[pi][0]:
                _, name, enc = plan[pi]; pi += 1
                lines = leak(name, enc)
            elif bi < len(baits) and written >= baits[bi]:
                bi += 1
                lines = ["aws_access_key_id = AKIAIOSFODNN7EXAMPLE" if bi % 2 else "GITHUB_TOKEN=ghp_FAKE0123456789abcdefghijKLMNOPqrstUV"]
            else:
                lines = [rng.choice(pool)]
            for l in lines:
                s = ts + l + "\n"
                batch.append(s)
                written += len(s.encode()) if not s.isascii() else len(s)
        f.write("".join(batch)); batch.clear()
with open(a.secrets, "w") as f:
    json.dump(secrets, f)
with open(a.secrets + ".leaks", "w") as f:
    for _, name, enc in plan[:pi]:
        f.write(f"{name} {enc}\n")
print(f"wrote {written} bytes to {a.out}; {len(secrets)} secrets, {pi} leaks, {bi} detector baits", file=sys.stderr)
