#!/usr/bin/env python3
"""Generates a Vault/OpenBao audit log that exercises as many decoder paths as it can, for
comparing two custos builds byte for byte (Benchmarks/compare-builds.sh): logins, token and
policy endpoints, ignored and routine paths, every error class, address forms, escapes and
non-ASCII in read fields, odd times, unpaired requests and responses, duplicates, whitespace,
CRLF, key order, and (with --mutate P) a share P of lines mutated the way the decoder's fuzz
test mutates them (bit flips, syntax inserts, truncation, deep nesting, deletions).

usage: gen-variety-log.py LINES OUT [--seed N] [--mutate P] [--unanswered P]

(--unanswered P: share of requests whose response never comes; a high share exceeds the
decoder's 50,000 waiting requests and exercises eviction.)
"""
import json, random, sys


def main():
    lines = int(sys.argv[1]); out = sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 7
    mutate = float(sys.argv[sys.argv.index("--mutate") + 1]) if "--mutate" in sys.argv else 0.0
    unanswered = float(sys.argv[sys.argv.index("--unanswered") + 1]) if "--unanswered" in sys.argv else 0.0
    rnd = random.Random(seed)
    hexs = lambda n: "".join(rnd.choice("0123456789abcdef") for _ in range(n))
    hm = lambda: "hmac-sha256:" + hexs(64)
    uuid = lambda: f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}"

    weird = ["caf\u00e9", "\u65e5\u672c", "a\"q", "b\\s", "c/d", "tab\there", "nl\nx", "ctl\u0001z",
             "emoji\U0001F600", "x" * 40, "", " sp ", "\u2028", "del\u007f"]
    names = ["root", "token", "token-svc-1", "approle", "userpass-alice", "oidc-bob@example.com",
             "ldap-carol", "kubernetes-ns1-sa2", "jwt-ci", "github-actions-x", "gitlab-runner", "cert-x",
             "aws-role", "weird-\u00e9", "-lead", "", "token-" + "y" * 30, "github-u1", "radius-x", "saml-x"]
    policy_sets = [[], ["default"], ["root"], ["default", "app-read"], ["a", "b", "a"], ["p\u00e9", "q\"x"],
                   ["default", "x" * 20, "y" * 14]]
    mounts = [("secret/", "kv"), ("kv/", "kv"), ("pki/", "pki"), ("", ""), (None, None), ("auth/token/", "token"),
              ("sys/", "system"), ("db\u00e9/", "database"), ("transit/", "transit")]
    paths = [
        "secret/data/prod/app/db", "secret/data/Production/x", "secret/data/PRD/x", "secret/metadata/staging/y",
        "kv/dev/z", "kv/development/z", "kv/test/q", "kv/QA/q", "kv/stage/s", "kv/stg/s", "pki/issue/web",
        "transit/encrypt/k", "secret/data/caf\u00e9/prod", "secret/\u65e5\u672c/dev", "secret/data/a\"b",
        "secret/data/back\\slash", "secret/data/ctl\u0001", "secret/data/nl\nx", "secret", "secret/", "/lead",
        "auth/token/lookup-self", "auth/token/lookup/s.abcdef", "auth/token/lookup/", "auth/token/lookup",
        "auth/token/revoke-accessor/acc123", "auth/token/renew/tok", "auth/token/renew-self",
        "auth/token/create", "auth/token/create-orphan", "auth/token/revoke-self", "auth/token/revoke",
        "auth/token/roles/r1", "sys/wrapping/unwrap/wraptok", "sys/wrapping/lookup", "sys/wrapping/rewrap/x",
        "auth/userpass/login/alice", "auth/ldap/login/carol", "auth/approle/login", "auth/oidc/oidc/callback",
        "auth/jwt/login", "auth/kubernetes/login", "auth/github/login", "auth/userpass/users/alice",
        "auth/x/callback", "auth/a", "auth/", "auth", "sys/policy/app", "sys/policies/acl/app", "sys/audit/file",
        "sys/audit/test", "sys/auth/userpass", "sys/mounts/secret", "sys/mounts", "sys/auth", "sys/health",
        "sys/seal-status", "sys/leader", "sys/capabilities-self", "sys/internal/ui/mounts/secret/data/x",
        "sys/internal/ui/resultant-acl", "sys/internal/counters/activity/monthly", "sys/internal/ui/",
        "sys/tools/hash", "sys/leases/renew", "sys", "sys/", "", "identity/entity/id/123",
        "secret/data/" + "long" * 30, "secret/data/prod//double", "secret/data/Dev/UPPER",
    ]
    ops = ["read", "list", "create", "update", "patch", "delete", "help", "alias-lookahead", "header",
           "resolve-role", "rollback", "periodic", "renew", "revoke", "", "weird-op", "r\u00e9ad"]
    errors = [None, None, None, None, "permission denied", "1 error occurred:\n\t* permission denied\n\n",
              "Permission Denied", "invalid token", "bad token", "missing client token", "unsupported path",
              "no handler for route \"x\"", "unsupported operation", "invalid request", "rate limit quota exceeded",
              "quota exceeded", "secret not found", "no value found at x", "invalid credentials",
              "invalid username or password", "invalid role or secret id", "invalid secret id", "invalid role id",
              "internal error", "something else entirely", "", "caf\u00e9 \u65e5 error", "ctl\u0002err"]
    addrs = ["10.0.0.1", "127.0.0.1", "192.0.2.7:5555", "[2001:db8::1]:8200", "2001:db8::2", "::1",
             "fe80::1%eth0", "fe80::1%", "[::1]", "[::1]x", "[::1]:99999", "host.example:80", "1.2.3.4:x",
             "256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "", "a:b:c", "[2001:db8::1]:", "1.2.3.4:65535",
             "1.2.3.4:65536", "::ffff:1.2.3.4", "g::1", None]
    times = ["2026-11-27T23:18:46.240262810Z", "2026-11-27T23:18:46Z", "2026-11-27T23:18:46.1Z",
             "2026-11-27T23:18:46.123456789Z", "2026-11-27T23:18:46.1234567891Z", "2026-11-27 23:18:46Z",
             "2026-11-27t23:18:46z", "2026-11-27T23:18:46+02:00", "2026-11-27T23:18:46.5-07:30",
             "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-12-31T23:59:60Z", "2026-13-01T00:00:00Z",
             "0000-01-01T00:00:00Z", "0000-01-01T00:30:00+01:00", "9999-12-31T23:59:59Z",
             "9999-12-31T23:30:00-01:00", "2026-11-27T24:00:00Z", "2026-11-27T23:18:46.Z", "2026-11-27",
             "", "not a time", "2026-11-27T23:18:46.0000000000Z", "\uff12026-11-27T23:18:46Z"]

    def auth():
        if rnd.random() < 0.08:
            return {"token_type": "default"}
        if rnd.random() < 0.03:
            return None
        a = {}
        if rnd.random() < 0.8: a["client_token"] = hm()
        if rnd.random() < 0.8: a["accessor"] = rnd.choice([hm(), "", "acc-\u00e9"])
        if rnd.random() < 0.9: a["display_name"] = rnd.choice(names)
        ps = rnd.choice(policy_sets)
        r = rnd.random()
        if r < 0.5: a["policies"] = ps
        elif r < 0.6: a["policies"] = None
        if rnd.random() < 0.6: a["token_policies"] = rnd.choice(policy_sets)
        if rnd.random() < 0.3: a["identity_policies"] = rnd.choice(policy_sets + [None])
        if rnd.random() < 0.7: a["entity_id"] = rnd.choice([uuid(), "", uuid()])
        if rnd.random() < 0.6:
            meta = {}
            for k in ["role", "role_name", "repository", "workflow", "project_path", "username", "run_id",
                      "pipeline_id", "namespace_path", "ci_config_ref_uri", "other", "runner_environment"]:
                if rnd.random() < 0.2:
                    meta[k] = rnd.choice(["ci-runner", "Pipeline", "svc", "GitHub", "gitlab-x", 5, None, True, ["a"], "r"])
            a["metadata"] = meta if rnd.random() < 0.95 else None
        if rnd.random() < 0.7:
            pr = {"allowed": rnd.random() < 0.9}
            if rnd.random() < 0.3: pr["granting_policies"] = [{"name": "x", "namespace_id": "root", "type": "acl"}]
            a["policy_results"] = pr if rnd.random() < 0.97 else None
        a["token_type"] = rnd.choice(["service", "batch", "default", None])
        if rnd.random() < 0.3: a["token_ttl"] = rnd.choice([0, 2764800, -1, 1.5, 1e3])
        return a

    def request(rid, path, op):
        q = {}
        if rid is not None: q["id"] = rid
        q["client_id"] = hexs(43) + "="
        q["operation"] = op
        mp, mt = rnd.choice(mounts)
        if mp is not None: q["mount_point"] = mp
        if mt is not None: q["mount_type"] = mt
        q["client_token"] = hm()
        r = rnd.random()
        if r < 0.6: q["namespace"] = {"id": "root"}
        elif r < 0.8: q["namespace"] = {"id": "ns1", "path": rnd.choice(["team-a/", "", "t\u00e9am/"])}
        elif r < 0.85: q["namespace"] = None
        q["path"] = path
        if rnd.random() < 0.3: q["data"] = {"password": "plain-secret-value", "n": 5, "b": True, "l": [1, {"x": None}]}
        a = rnd.choice(addrs)
        if a is not None: q["remote_address"] = a
        r = rnd.random()
        if r < 0.5: q["remote_port"] = rnd.randrange(65536)
        elif r < 0.51: q["remote_port"] = rnd.choice([None, 70000, -1])
        if rnd.random() < 0.1: q["headers"] = {"x-a": ["b"]}
        return q

    base_sec = 1_795_000_000
    used_ids = []
    out_lines = []
    i = 0
    while len(out_lines) < lines:
        i += 1
        path = rnd.choice(paths)
        if rnd.random() < 0.05: path = rnd.choice(weird) + "/" + path
        op = rnd.choice(ops[:6]) if rnd.random() < 0.7 else rnd.choice(ops)
        r = rnd.random()
        if r < 0.03: rid = None
        elif r < 0.05: rid = ""
        elif r < 0.08 and used_ids: rid = rnd.choice(used_ids)
        elif r < 0.09: rid = rnd.choice(weird)
        else: rid = uuid()
        if rid: used_ids.append(rid); used_ids[:] = used_ids[-500:]
        t = rnd.choice(times) if rnd.random() < 0.08 else "2026-11-%02dT%02d:%02d:%02d.%09dZ" % (
            1 + i % 28, i % 24, i % 60, (i * 7) % 60, rnd.randrange(10**9))
        err = rnd.choice(errors)
        a = auth()
        q = request(rid, path, op)
        rec = {"time": t, "type": "request"}
        if a is not None or rnd.random() < 0.5: rec["auth"] = a
        rec["request"] = q
        if err is not None: rec["error"] = err
        resp = dict(rec); resp["type"] = "response"
        if rnd.random() < 0.02: resp["time"] = rnd.choice(times)
        rr = {"mount_type": rnd.choice(["kv", "userpass", "jwt", "approle", "", None])}
        if "login" in path or "callback" in path or rnd.random() < 0.05:
            la = auth()
            if la is not None: rr["auth"] = la
        rr["data"] = {"password": "plain-secret-value", "num": 7}
        resp["response"] = rr if rnd.random() < 0.95 else None
        shape = rnd.random()
        pair = []
        if unanswered > 0 and rnd.random() < unanswered: pair = [rec]
        elif shape < 0.75: pair = [rec, resp]
        elif shape < 0.85: pair = [rec]                 # never answered
        elif shape < 0.93: pair = [resp]                # answer without request
        elif shape < 0.96: pair = [rec, resp, resp]     # response twice
        else: pair = [rec, rec, resp]                   # request twice
        for p in pair:
            p = dict(p)
            r = rnd.random()
            if r < 0.02: p["type"] = rnd.choice(["other", None, 5])
            elif r < 0.03: del p["type"]
            elif r < 0.04: del p["time"]
            elif r < 0.05: p["time"] = None
            elif r < 0.06: p["time"] = 5
            keys = list(p.keys())
            if rnd.random() < 0.1: rnd.shuffle(keys)
            sep = (",", ":") if rnd.random() < 0.9 else (" , ", " : ")
            text = json.dumps({k: p[k] for k in keys}, separators=sep, ensure_ascii=rnd.random() < 0.3)
            r = rnd.random()
            if r < 0.01: text = text.replace('"path"', '"p\\u0061th"', 1)
            elif r < 0.02: text = text.replace('"type":"response"', '"type":"request","type":"response"', 1)
            elif r < 0.03: text = "  " + text + " \t"
            elif r < 0.04: text = text + "\r"
            elif r < 0.045: text = text.replace('"path":"', '"path":"' + "z" * 5000, 1)
            elif r < 0.05: text = text.replace('"display_name":"', '"display_name":"' + "\\u0001" * 800, 1)
            out_lines.append(text.encode("utf-8"))
        if rnd.random() < 0.01: out_lines.append(b"")
        if rnd.random() < 0.005: out_lines.append(b"   ")
        if rnd.random() < 0.0005: out_lines.append(b'{"time":"' + b"A" * ((1 << 20) + 5) + b'"}')
    out_lines = out_lines[:lines]

    inserts = [b'"', b"{", b"}", b"\\", b"[", b"]", b",", b":", b"\\u", b"\\uD800", b"\x00", b"\xff", b"\xc3",
               b"null", b"-0", b"\\uDC00", b"\\uD83D\\uDE00", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"1e5", b"0.5"]
    if mutate > 0:
        for n in range(len(out_lines)):
            if rnd.random() >= mutate: continue
            l = bytearray(out_lines[n])
            for _ in range(rnd.randint(1, 4)):
                if not l: break
                k = rnd.randrange(100)
                if k < 35:
                    j = rnd.randrange(len(l)); l[j] ^= 1 << rnd.randrange(8)
                elif k < 50:
                    l[rnd.randrange(len(l))] = rnd.randrange(256)
                elif k < 62:
                    del l[len(l) - rnd.randint(1, len(l)):]
                elif k < 85:
                    j = rnd.randint(0, len(l)); l[j:j] = rnd.choice(inserts)
                elif k < 90:
                    j = rnd.randint(0, len(l)); l[j:j] = (b"[" if rnd.random() < 0.5 else b"{") * rnd.choice([10, 63, 64, 65, 10000])
                elif k < 95:
                    j = l.find(b"T")
                    if j > 3: l[j - 1] = rnd.randint(48, 57)
                else:
                    a = rnd.randrange(len(l)); del l[a:a + rnd.randint(1, 40)]
            out_lines[n] = bytes(l).replace(b"\n", b"")
    with open(out, "wb") as f:
        for l in out_lines:
            f.write(l + b"\n")


if __name__ == "__main__":
    main()
