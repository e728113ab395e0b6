// Retention end to end with the built `custos` binary (no OpenBao needed): a trail with old
// and recent events, `custos archive` to a local directory, `archive verify`, `prune` (refused
// before the archive exists), then `verify` passes and says what was pruned, and an inclusion
// proof of a remaining entry verifies offline.

import CustosCore
import Foundation
import Testing

@Suite("Retention end to end")
struct RetentionCLITests {
    func custos(_ args: [String]) async throws -> CommandResult {
        var r = try await run(try locateCustos(), args, timeout: 120)
        r.label = "custos " + args.joined(separator: " ")
        return r
    }

    @Test("archive, verify the archive, prune; verify and proofs of remaining entries still pass")
    func archivePruneVerify() async throws {
        let dir = try TempDir("retention")
        defer {
            // The archive may carry the immutable flag (CAP_LINUX_IMMUTABLE): clear it to clean up.
            _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/chattr"), arguments: ["-R", "-i", dir.path("archive")]).waitUntilExit()
            dir.remove()
        }
        let data = dir.path("data"), archive = "local:" + dir.path("archive")
        let now = Int64(Date().timeIntervalSince1970)
        var lines = ""
        for i in 0..<1000 {
            // 0..<600: two years old (past every tier); the rest: yesterday.
            let t = i < 600 ? now - 730 * 86_400 + Int64(i) : now - 86_400 + Int64(i)
            let e = AccessEvent(
                id: EventID.make(instance: "ret", key: "req-\(i)"), time: EventTime(seconds: t),
                source: .init(kind: "openbao", instance: "ret"), action: i % 5 == 0 ? .login : .read, outcome: .success, reason: nil,
                secret: i % 5 == 0 ? nil : .init(store: "secret/", path: "secret/data/app\(i % 7)/db"),
                identity: .init(id: "entity-\(i % 3)", name: "svc-\(i % 3)", kind: .service), origin: nil, requestID: "req-\(i)")
            lines += String(decoding: e.canonicalJSON(), as: UTF8.self) + "\n"
        }
        let events = dir.path("events.jsonl")
        try lines.write(toFile: events, atomically: true, encoding: .utf8)
        try await custos(["ingest", "--data", data, "--format", "custos", "--origin", "retention.test/trail", "--quiet", events]).expect(0, "ingest")
        let vkey = data + "/keys/trail.vkey"

        // Nothing archived yet: prune refuses and deletes nothing.
        let refused = try await custos(["prune", "--data", data, "--to", archive])
        #expect(refused.status != 0, "prune without an archive: \(refused.stdout)")
        #expect(FileManager.default.fileExists(atPath: data + "/trail/tile/entries/000"))

        // A retention file below the minimum is refused with the key and the minimum.
        let bad = dir.path("bad.yaml")
        try "retention:\n  secret_access: 90d\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let badRun = try await custos(["prune", "--data", data, "--to", archive, "--retention", bad])
        #expect(badRun.status == 2 && badRun.stderr.contains("retention.secret_access") && badRun.stderr.contains("365d"), "\(badRun.stderr)")

        let a = try await custos(["archive", "--data", data, "--to", archive]).expect(0, "archive")
        #expect(a.stdout.contains("archived 3 bundle(s)"), "\(a.stdout)")
        try await custos(["archive", "verify", "--data", data, "--to", archive]).expect(0, "archive verify")

        let dry = try await custos(["prune", "--data", data, "--to", archive, "--dry-run"]).expect(0, "prune --dry-run")
        #expect(dry.stdout.contains("would prune entries 0..<512"), "\(dry.stdout)")
        #expect(FileManager.default.fileExists(atPath: data + "/trail/tile/entries/000"))

        // A future --now would delete entries still within retention: refused, nothing pruned
        // (a dry run may look ahead).
        let future = try await custos(["prune", "--data", data, "--to", archive, "--now", "2099-01-01T00:00:00Z"])
        #expect(future.status == 2 && future.stderr.contains("is in the future"), "\(future.stdout)\(future.stderr)")
        #expect(FileManager.default.fileExists(atPath: data + "/trail/tile/entries/000"))
        try await custos(["prune", "--data", data, "--to", archive, "--now", "2099-01-01T00:00:00Z", "--dry-run"]).expect(0, "prune --dry-run --now 2099")

        let p = try await custos(["prune", "--data", data, "--to", archive]).expect(0, "prune")
        #expect(p.stdout.contains("pruned entries 0..<512"), "\(p.stdout)")
        for n in ["000", "001"] {
            #expect(!FileManager.default.fileExists(atPath: data + "/trail/tile/entries/" + n))
            #expect(FileManager.default.fileExists(atPath: dir.path("archive") + "/tile/entries/" + n))
            #expect(FileManager.default.fileExists(atPath: data + "/trail/tile/0/" + n))
        }

        // The index forgot the pruned entries, and a rebuild starts at the minimum index.
        let count = try await custos(["query", "--data", data, "--count"]).expect(0, "query --count after prune")
        #expect(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "488", "\(count.stdout)")
        try await custos(["reindex", "--data", data]).expect(0, "reindex after prune")
        let recount = try await custos(["query", "--data", data, "--count"]).expect(0, "query --count after reindex")
        #expect(recount.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "488", "\(recount.stdout)")

        let v = try await custos(["verify", "--data", data, "--vkey", vkey]).expect(0, "verify after prune")
        #expect(v.stdout.contains("pruned below 512"), "\(v.stdout)")

        let proofFile = dir.path("proof.txt")
        try await custos(["proof", "--data", data, "--out", proofFile, "700"]).expect(0, "proof of a remaining entry")
        try await custos(["verify-proof", "--vkey", vkey, proofFile]).expect(0, "verify-proof")
        let gone = try await custos(["proof", "--data", data, "10"])
        #expect(gone.status == 2 && gone.stderr.contains("pruned"), "\(gone.stderr)")

        // A remote audit of the pruned trail through `custos serve`: /trail/pruned tells
        // `verify --url` which bundles are gone.
        let port = try ServeIntegrationTests.freePort()
        let launched = try ServeProcess(custos: try locateCustos(), arguments: ["serve", "--data", data, "--listen", "127.0.0.1:\(port)"],
                                        port: port, logs: dir, tag: "pruned")
        let server = launched.process
        defer { launched.kill9() }
        try await launched.waitUp()
        let tokenFile = dir.path("auditor.token")
        try launched.token("auditor").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let remote = try await custos(["verify", "--url", "http://127.0.0.1:\(port)", "--vkey", vkey, "--token-file", tokenFile])
            .expect(0, "verify --url of a pruned trail")
        #expect(remote.stdout.contains("pruned below 512"), "\(remote.stdout)")
        kill(server.processIdentifier, SIGKILL)

        // The archive still verifies against the tiles that stayed; a second prune has nothing to do.
        try await custos(["archive", "verify", "--data", data, "--to", archive]).expect(0, "archive verify after prune")
        let again = try await custos(["prune", "--data", data, "--to", archive]).expect(0, "prune again")
        #expect(again.stdout.contains("nothing to prune"), "\(again.stdout)")

        // Evidence over a pruned trail: the pruned part of the tree comes from the tiles that
        // stayed (the root still checks), the count covers the entries kept, and says so; the
        // document checks offline.
        let doc = dir.path("evidence.json")
        let evidence = try await custos(["evidence", "--data", data, "--from", "2000-01-01", "--to", "2100-01-01", "--out", doc])
            .expect(0, "evidence on a pruned trail")
        #expect(evidence.stdout.contains("Over entries 512..<") && evidence.stdout.contains("archived and pruned"), "\(evidence.stdout)")
        let checked = try await custos(["evidence", "check", doc, "--vkey", vkey]).expect(0, "evidence check of a pruned trail's evidence")
        #expect(checked.stdout.contains("entries below 512 were pruned"), "\(checked.stdout)")
        // The check says what it cannot prove (the count, query, period and scan are unsigned).
        #expect(checked.stdout.contains("not proven by this document: its count"), "\(checked.stdout)")
    }
}
