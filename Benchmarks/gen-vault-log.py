#!/usr/bin/env python3
"""Generates a realistic Vault/OpenBao audit log: N accesses, each a request line and a
response line (~1.3 KB each) shaped like OpenBao 2.7.2's file audit device output
(Tests/CustosCoreTests/Fixtures/openbao/audit-2.7.2.log). Deterministic for a given seed.

usage: gen-vault-log.py LINES OUT [--seed N]
"""
import json, random, sys

def main():
    lines = int(sys.argv[1]); out = sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    rnd = random.Random(seed)
    hexs = lambda n: "".join(rnd.choice("0123456789abcdef") for _ in range(n))
    hm = lambda: "hmac-sha256:" + hexs(64)
    identities = []
    for i in range(200):
        kind = rnd.choice(["approle", "userpass", "token", "kubernetes", "oidc"])
        name = {"approle": "approle", "userpass": f"userpass-user{i}", "token": f"token-svc-{i}",
                "kubernetes": f"kubernetes-ns{i%7}-sa{i}", "oidc": f"oidc-user{i}@example.com"}[kind]
        identities.append({
            "client_token": hm(), "accessor": hm(), "display_name": name,
            "policies": ["default", f"app-{i%20}-read"], "token_policies": ["default", f"app-{i%20}-read"],
            "metadata": {"role_name": f"role-{i%20}"} if kind == "approle" else {"username": f"user{i}"},
            "entity_id": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}",
            "token_type": "service", "token_ttl": 2764800, "token_issue_time": "2026-11-27T23:18:47Z",
        })
    envs = ["prod", "staging", "dev"]
    t0 = 1_795_000_000
    with open(out, "w") as f:
        n = 0
        i = 0
        while n < lines:
            ident = identities[rnd.randrange(len(identities))]
            env = envs[i % 3]
            path = f"secret/data/{env}/app{i % 50}/db{i % 7}"
            denied = rnd.random() < 0.03
            rid = f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}"
            ns = rnd.randrange(1_000_000_000)
            sec = t0 + i // 50
            ts = lambda extra: "%s.%09dZ" % (__import__("time").strftime("%Y-%m-%dT%H:%M:%S", __import__("time").gmtime(sec)), (ns + extra) % 1_000_000_000)
            auth = dict(ident)
            auth["policy_results"] = {"allowed": not denied}
            req = {"id": rid, "client_id": hexs(43) + "=", "operation": "read", "mount_point": "secret/",
                   "mount_type": "kv", "mount_running_version": "v2.7.2+builtin.bao", "mount_class": "secret",
                   "client_token": ident["client_token"], "client_token_accessor": ident["accessor"],
                   "namespace": {"id": "root"}, "path": path,
                   "remote_address": f"10.{i % 4}.{(i // 4) % 256}.{i % 250 + 1}", "remote_port": 30000 + i % 30000}
            err = {"error": "1 error occurred:\n\t* permission denied\n\n"} if denied else {}
            request = {"time": ts(0), "type": "request", "auth": auth, "request": req, **err}
            resp_data = {"error": hm()} if denied else {"data": {"password": hm(), "username": hm(), "port": 5432, "enabled": True},
                                                        "metadata": {"created_time": hm(), "custom_metadata": None, "deletion_time": hm(), "destroyed": False, "version": 3}}
            response = {"time": ts(210000), "type": "response", "auth": auth, "request": req,
                        "response": {"mount_point": "secret/", "mount_type": "kv", "mount_accessor": "kv_" + hexs(8),
                                     "mount_running_plugin_version": "v2.7.2+builtin.bao", "mount_class": "secret", "data": resp_data}, **err}
            f.write(json.dumps(request, separators=(",", ":")) + "\n")
            n += 1
            if n < lines:
                f.write(json.dumps(response, separators=(",", ":")) + "\n")
                n += 1
            i += 1

if __name__ == "__main__":
    main()
