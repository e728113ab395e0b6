// `custos ingest --format github|gitlab` end to end through the built binary, then
// `custos query`: the GitHub and GitLab records of Tests/CustosCoreTests/Fixtures/sources
// (pretty-printed objects back to back and NDJSON), re-ingested as duplicates. No OpenBao.

import CustosCore
import Foundation
import Testing

@Suite("custos ingest: GitHub and GitLab")
struct SourceIngestCLITests {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CustosCoreTests/Fixtures/sources/\(name)").path
    }

    func custos(_ args: [String]) async throws -> CommandResult {
        var r = try await run(try locateCustos(), args, timeout: 120)
        r.label = "custos " + args.joined(separator: " ")
        return r
    }

    @Test("ingest github and gitlab, re-ingest gives duplicates, query finds the events")
    func ingestAndQuery() async throws {
        let dir = try TempDir("sources")
        defer { dir.remove() }
        let data = dir.path("data")
        let jobs = Self.fixture("github-jobs.json"), secrets = Self.fixture("github-secrets.ndjson")
        let first = try await custos(["ingest", "--data", data, "--format", "github", "--instance", "octo", "--quiet", jobs, secrets]).expect(0, "ingest")
        #expect(first.stdout.contains("accepted 9  duplicates 0  ignored 2  rejected 0"), "\(first.stdout)")
        let again = try await custos(["ingest", "--data", data, "--format", "github", "--instance", "octo", "--quiet", jobs, secrets]).expect(0, "again")
        #expect(again.stdout.contains("accepted 0  duplicates 9  ignored 2  rejected 0"), "\(again.stdout)")
        let gitlab = try await custos(["ingest", "--data", data, "--format", "gitlab", "--quiet", Self.fixture("gitlab-variables.ndjson")]).expect(0, "gitlab")
        #expect(gitlab.stdout.contains("accepted 5  duplicates 0  ignored 1  rejected 0"), "\(gitlab.stdout)")

        let json = try await custos(["query", "--data", data, "--secret", "github/octo-org/payments/*", "--format", "json"]).expect(0, "query")
        let events = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [[String: Any]])
        #expect(events.count == 6)
        let reads = events.filter { $0["action"] as? String == "read" }
        #expect(reads.count == 4)
        let deploy = try #require(reads.first { ($0["secret"] as? [String: Any])?["path"] as? String == "github/octo-org/payments/STRIPE_KEY" })
        let pipeline = try #require(deploy["pipeline"] as? [String: Any])
        #expect(pipeline["provider"] as? String == "github" && pipeline["trigger"] as? String == "manual")
        #expect(pipeline["repository"] as? String == "octo-org/payments" && pipeline["attempt"] as? Int == 2)
        #expect((deploy["identity"] as? [String: Any])?["kind"] as? String == "pipeline")
        #expect((deploy["source"] as? [String: Any])?["kind"] as? String == "github")

        let pipelines = try await custos(["query", "--data", data, "--kind", "pipeline", "--count"]).expect(0, "count")
        #expect(pipelines.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "4", "\(pipelines.stdout)")
        let gl = try await custos(["query", "--data", data, "--secret", "gitlab/acme/*", "--action", "read", "--format", "json"]).expect(0, "gitlab query")
        let glEvents = try #require(try JSONSerialization.jsonObject(with: gl.stdoutData) as? [[String: Any]])
        #expect(glEvents.count == 1)

        // A bad record is reported with its line, and the rest is ingested.
        try "{\"action\":\"org.create_actions_secret\",\"@timestamp\":1767225600000,\"org\":\"o\",\"secret_name\":\"A\"}\n{\"action\":\n"
            .write(toFile: dir.path("bad.json"), atomically: true, encoding: .utf8)
        let bad = try await custos(["ingest", "--data", data, "--format", "github", "--quiet", dir.path("bad.json")]).expect(0, "bad")
        #expect(bad.stdout.contains("accepted 1") && bad.stdout.contains("rejected 1"), "\(bad.stdout)")
        #expect(bad.stderr.contains("bad.json:2:"), "\(bad.stderr)")
        let wrong = try await custos(["ingest", "--data", data, "--format", "gitlabx", dir.path("bad.json")])
        #expect(wrong.status == 2 && wrong.stderr.contains("github, gitlab"), "\(wrong.stderr)")
    }
}
