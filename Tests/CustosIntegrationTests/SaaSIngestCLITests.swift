// `custos ingest --format azure|kubernetes|infisical|onepassword|doppler` end to end through
// the built binary, then `custos query`: the records of Tests/CustosCoreTests/Fixtures/sources,
// re-ingested as duplicates. No OpenBao.

import CustosCore
import Foundation
import Testing

@Suite("custos ingest: Azure, Kubernetes, Infisical, 1Password, Doppler")
struct SaaSIngestCLITests {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CustosCoreTests/Fixtures/sources/\(name)").path
    }

    func custos(_ args: [String]) async throws -> CommandResult {
        var r = try await run(try locateCustos(), args, timeout: 120)
        r.label = "custos " + args.joined(separator: " ")
        return r
    }

    @Test("ingest each format, re-ingest gives duplicates, query finds denied accesses")
    func ingestAndQuery() async throws {
        let dir = try TempDir("saas")
        defer { dir.remove() }
        let data = dir.path("data")
        let runs: [(String, [String], String)] = [
            ("azure", ["azure-1.json", "azure-records.json"], "accepted 7  duplicates 0  ignored 1  rejected 0"),
            ("kubernetes", ["k8s-audit.ndjson"], "accepted 10  duplicates 0  ignored 2  rejected 0"),
            ("infisical", ["infisical-audit.json"], "accepted 7  duplicates 0  ignored 1  rejected 0"),
            ("onepassword", ["onepassword-events.json"], "accepted 5  duplicates 0  ignored 1  rejected 0"),
            ("doppler", ["doppler-1.ndjson", "doppler-written.ndjson"], "accepted 10  duplicates 0  ignored 2  rejected 0"),
        ]
        for (format, files, summary) in runs {
            let r = try await custos(["ingest", "--data", data, "--format", format, "--instance", "prod", "--quiet"] + files.map(Self.fixture)).expect(0, format)
            #expect(r.stdout.contains(summary), "\(format): \(r.stdout)")
            let again = try await custos(["ingest", "--data", data, "--format", format, "--instance", "prod", "--quiet"] + files.map(Self.fixture)).expect(0, format)
            let accepted = summary.split(separator: " ")[1]
            #expect(again.stdout.contains("accepted 0  duplicates \(accepted)"), "\(format): \(again.stdout)")
        }
        let json = try await custos(["query", "--data", data, "--secret", "k8s/prod/payments/*", "--format", "json"]).expect(0, "query")
        let events = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [[String: Any]])
        #expect(events.count == 8)
        #expect(!json.stdout.contains("CANARY"))
        let denied = try await custos(["query", "--data", data, "--outcome", "denied", "--count"]).expect(0, "denied")
        // Azure 403 (carried) and 401, Kubernetes 403 and 401, Infisical failed login, 1Password failed sign-in.
        #expect(denied.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "6", "\(denied.stdout)")
        let wrong = try await custos(["ingest", "--data", data, "--format", "azur", Self.fixture("azure-1.json")])
        #expect(wrong.status == 2 && wrong.stderr.contains("azure, kubernetes, infisical, onepassword, doppler"), "\(wrong.stderr)")
    }
}
