// `custos export` end to end through the built binary: the OpenBao 2.7.2 audit-log fixture is
// ingested, exported as OCSF 1.3.0 NDJSON (validated against the pinned schema with the PyPI
// package ocsf-json-schema), as RFC 5424 syslog and as CEF; each export is recorded in the
// trail as an investigation. No OpenBao.

import Foundation
import Testing

@Suite("custos export: OCSF, syslog and CEF")
struct ExportCLITests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let schemaAvailable: Bool = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import ocsf_json_schema, jsonschema"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }()
    static let schemaRequired = ProcessInfo.processInfo.environment["CUSTOS_REQUIRE_OCSF"] == "1"

    func custos(_ args: [String]) async throws -> CommandResult {
        var r = try await run(try locateCustos(), args, timeout: 120)
        r.label = "custos " + args.joined(separator: " ")
        return r
    }

    @Test("export --format ocsf validates against OCSF 1.3.0; syslog5424 and cef; recorded as investigations")
    func exportFormats() async throws {
        let dir = try TempDir("export")
        defer { dir.remove() }
        let data = dir.path("data")
        let log = Self.repoRoot.appendingPathComponent("Tests/CustosCoreTests/Fixtures/openbao/audit-2.7.2.log").path
        try await custos(["ingest", "--data", data, "--format", "openbao", "--instance", "dev", "--quiet", log]).expect(0, "ingest")
        let total = Int(try await custos(["query", "--data", data, "--count"]).expect(0, "count").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1

        let out = dir.path("all.ocsf.ndjson")
        let e = try await custos(["export", "--data", data, "--actor", "auditor@test", "--out", out]).expect(0, "export")
        #expect(e.stderr.contains("\(total) event(s) written"), "\(e.stderr)")
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == total && total > 10)
        let records = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(records.allSatisfy { ($0["metadata"] as? [String: Any])?["version"] as? String == "1.3.0" })
        #expect(records.contains { $0["class_uid"] as? Int == 3002 && $0["type_uid"] as? Int == 300201 })
        #expect(records.contains { $0["type_uid"] as? Int == 600302 && $0["status_id"] as? Int == 2 })
        #expect(records.contains { (($0["actor"] as? [String: Any])?["user"] as? [String: Any])?["type_id"] as? Int == 2 })  // root
        #expect(records.contains { (($0["actor"] as? [String: Any])?["user"] as? [String: Any])?["type_id"] as? Int == 1 })  // human
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(!text.contains("CANARY"))

        if Self.schemaAvailable {
            let script = Self.repoRoot.appendingPathComponent("Tests/CustosCoreTests/Fixtures/ocsf/validate_ocsf.py").path
            let v = try await run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, "1.3.0", out], timeout: 120)
            #expect(v.status == 0 && v.stdout.contains("valid \(total) records"), "\(v.stdout)\(v.stderr)")
        } else if Self.schemaRequired {
            Issue.record("CUSTOS_REQUIRE_OCSF=1 but python3 cannot import ocsf_json_schema and jsonschema")
        }

        // Filters as in `custos query`; stdout when no --out.
        let denied = try await custos(["export", "--data", data, "--outcome", "denied", "--action", "read"]).expect(0, "export denied")
        let deniedLines = denied.stdout.split(separator: "\n")
        #expect(!deniedLines.isEmpty && deniedLines.allSatisfy { $0.contains("\"type_uid\":600302") && $0.contains("\"status_id\":2") })

        let syslog = try await custos(["export", "--data", data, "--format", "syslog5424", "--hostname", "h1", "--action", "login"]).expect(0, "syslog")
        let sl = syslog.stdout.split(separator: "\n")
        #expect(!sl.isEmpty && sl.allSatisfy { $0.hasPrefix("<8") && $0.contains(" h1 custos - login [custos@32473 ") })
        let cef = try await custos(["export", "--data", data, "--format", "cef", "--limit", "3"]).expect(0, "cef")
        let cl = cef.stdout.split(separator: "\n")
        #expect(cl.count == 3 && cl.allSatisfy { $0.hasPrefix("CEF:0|Custos|Custos|1|") })
        let bad = try await custos(["export", "--data", data, "--format", "xml"])
        #expect(bad.status != 0 && bad.stderr.contains("ocsf, syslog5424, cef"), "\(bad.stderr)")

        let inv = try await custos(["investigations", "--data", data, "--format", "json"]).expect(0, "investigations")
        let recorded = try #require(try JSONSerialization.jsonObject(with: inv.stdoutData) as? [[String: Any]])
        let exports = recorded.filter { $0["action"] as? String == "export" }
        #expect(exports.count == 4, "\(inv.stdout)")
        #expect(exports.contains { $0["actor"] as? String == "auditor@test" && ($0["parameters"] as? [String: String])?["format"] == "ocsf"
                                   && $0["result_count"] as? Int == total }, "\(inv.stdout)")
    }
}
