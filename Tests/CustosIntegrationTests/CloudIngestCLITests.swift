// `custos ingest --format cloudtrail|gcp` end to end through the built binary, then
// `custos query`: a gzipped CloudTrail log file, NDJSON CloudTrail records and GCP audit
// entries from Tests/CustosCoreTests/Fixtures/sources, re-ingested as duplicates. No cloud.

import CustosCore
import Foundation
import Testing

@Suite("custos ingest: CloudTrail and GCP")
struct CloudIngestCLITests {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CustosCoreTests/Fixtures/sources/\(name)").path
    }

    func custos(_ args: [String]) async throws -> CommandResult {
        var r = try await run(try locateCustos(), args, timeout: 120)
        r.label = "custos " + args.joined(separator: " ")
        return r
    }

    @Test("ingest a gzipped log file, records and GCP entries; re-ingest gives duplicates; query finds them")
    func ingestAndQuery() async throws {
        let dir = try TempDir("cloud")
        defer { dir.remove() }
        let data = dir.path("data")
        // gzip by the system's tool, as S3 downloads of trail files are.
        let gz = dir.path("111122223333_CloudTrail_eu-west-1_20260105T1000Z_abc.json.gz")
        try FileManager.default.copyItem(atPath: Self.fixture("cloudtrail-logfile.json"), toPath: dir.path("logfile.json"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gzip", "-c", dir.path("logfile.json")]
        #expect(FileManager.default.createFile(atPath: gz, contents: nil))
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: gz))
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)

        let records = Self.fixture("cloudtrail-secrets.ndjson"), batch = Self.fixture("aws-1.json")
        let first = try await custos(["ingest", "--data", data, "--format", "cloudtrail", "--instance", "acct", "--quiet", gz, batch, records]).expect(0, "ingest")
        #expect(first.stdout.contains("accepted 16  duplicates 3  ignored 5  rejected 0"), "\(first.stdout)")
        let again = try await custos(["ingest", "--data", data, "--format", "cloudtrail", "--instance", "acct", "--quiet", gz, batch, records]).expect(0, "again")
        #expect(again.stdout.contains("accepted 0  duplicates 19  ignored 5  rejected 0"), "\(again.stdout)")
        let gcp = try await custos(["ingest", "--data", data, "--format", "gcp", "--quiet", Self.fixture("gcp-secrets.ndjson"), Self.fixture("gcp-1.json")]).expect(0, "gcp")
        #expect(gcp.stdout.contains("accepted 11  duplicates 0  ignored 1  rejected 0"), "\(gcp.stdout)")

        let json = try await custos(["query", "--data", data, "--secret", "aws/eu-west-1/secretsmanager/prod/*", "--format", "json"]).expect(0, "query")
        let events = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [[String: Any]])
        // prod/payments/db: service read, write, describe (SSO), federated, web identity, unknown; prod/legacy: root.
        #expect(events.count == 7, "\(events.count)")
        #expect(events.allSatisfy { ($0["source"] as? [String: Any])?["kind"] as? String == "aws" })
        let denied = try await custos(["query", "--data", data, "--outcome", "denied", "--count"]).expect(0, "denied")
        #expect(denied.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "3", "\(denied.stdout)")
        let gq = try await custos(["query", "--data", data, "--secret", "gcp/acme-prod/*", "--action", "read", "--format", "json"]).expect(0, "gcp query")
        let gEvents = try #require(try JSONSerialization.jsonObject(with: gq.stdoutData) as? [[String: Any]])
        #expect(gEvents.count == 4)
        let wrong = try await custos(["ingest", "--data", data, "--format", "aws", records])
        #expect(wrong.status == 2 && wrong.stderr.contains("cloudtrail, gcp"), "\(wrong.stderr)")
    }
}
