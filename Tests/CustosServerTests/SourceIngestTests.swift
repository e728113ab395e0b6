import CustosCore
@testable import CustosServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// GitHub and GitLab records through `POST /v1/ingest` (`format=github|gitlab|auto`) and
/// `custos ingest`'s `Ingestor` (the decoders themselves: CustosCoreTests/SourceDecoderTests).
@Suite struct SourceIngestTests {
    static let githubJob = """
        {
          "@timestamp": 1767225600123,
          "_document_id": "doc-1",
          "action": "workflows.prepared_workflow_job",
          "actor": "octocat",
          "event": "push",
          "job_name": "deploy",
          "repo": "o/r",
          "run_attempt": 1,
          "secrets_passed": ["A", "B"],
          "workflow_run_id": 7
        }
        {
          "@timestamp": 1767225600999,
          "_document_id": "doc-2",
          "action": "repo.create",
          "actor": "octocat",
          "repo": "o/r2"
        }
        """
    static let gitlabLine = #"{"id":9,"author_id":1,"author_name":"Ada","entity_type":"Project","entity_path":"g/p","event_type":"ci_variable_created","target_details":"TOKEN","created_at":"2026-01-01T00:00:00Z","ip_address":"192.0.2.1"}"#
    static let vaultLines = vaultPair(id: "r1", path: "secret/data/prod/db", name: "alice")

    @Test func explicitFormatsTakePrettyNDJSONAndArrays() {
        let gh = BodyDecoder(format: .github, instance: "i", maxRecordBytes: 1 << 20).decode(Array(Self.githubJob.utf8))
        #expect(gh.records == 2 && gh.events.count == 2 && gh.ignored == 1 && gh.rejected == 0, "\(gh.rejections)")
        #expect(gh.events.allSatisfy { $0.source == .init(kind: "github", instance: "i") && $0.pipeline?.runID == "7" })
        let array = "[" + Self.gitlabLine + ", 5, " + Self.gitlabLine + "]"
        let gl = BodyDecoder(format: .gitlab, instance: "i", maxRecordBytes: 1 << 20).decode(Array(array.utf8))
        #expect(gl.records == 3 && gl.events.count == 2 && gl.rejected == 1)
        #expect(gl.rejections.first?.line == 2, "array elements are numbered")
        // A record over the limit is rejected with its line.
        let small = BodyDecoder(format: .gitlab, instance: "i", maxRecordBytes: 100).decode(Array((Self.gitlabLine + "\n" + Self.gitlabLine).utf8))
        #expect(small.rejected == 2 && small.rejections.map(\.line) == [1, 2])
    }

    @Test func autoRecognisesEachRecord() {
        let body = Self.gitlabLine + "\n" + Self.vaultLines
            + #"{"action":"org.create_actions_secret","@timestamp":1767225600000,"actor":"a","org":"o","secret_name":"S"}"# + "\n"
        let r = BodyDecoder(format: .auto, instance: "i", maxRecordBytes: 1 << 20).decode(Array(body.utf8))
        #expect(r.rejected == 0, "\(r.rejections)")
        #expect(r.events.map(\.source.kind) == ["gitlab", "vault", "github"])
    }

    @Test func overHTTP() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir)
        try await buildApplication(state: state).test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(t.ingest)"]
            for (format, body, accepted) in [("github", Self.githubJob, 2), ("gitlab", Self.gitlabLine, 1), ("github", Self.githubJob, 0)] {
                try await client.execute(uri: "/v1/ingest?format=\(format)&instance=acme", method: .post, headers: auth, body: ByteBuffer(string: body)) { r in
                    #expect(r.status == .ok, "\(format): \(String(buffer: r.body))")
                    #expect((ServeTests.json(r.body) as? [String: Any])?["accepted"] as? Int == accepted, "\(format): \(String(buffer: r.body))")
                }
            }
            try await client.execute(uri: "/v1/ingest?format=bitbucket", method: .post, headers: auth, body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("github, gitlab"))
            }
        }
    }

    @Test func ingestorReadsGitHubFilesInAnyFraming() throws {
        let dir = TempDir(), inputs = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let file = inputs.path + "/audit.json"
        try Self.githubJob.write(toFile: file, atomically: true, encoding: .utf8)
        let ingestor = Ingestor(store: store, format: .github, instance: "i", batchSize: 1)
        try ingestor.ingest(path: file)
        try ingestor.ingest(path: file)
        let s = try ingestor.finish()
        #expect(s.accepted == 2 && s.duplicates == 2 && s.ignored == 2 && s.rejected == 0)
        #expect(s.lines == 2 * 19)
        #expect(IngestFormat(rawValue: "gitlab")?.sourceFormat == .gitlab && IngestFormat.vault.sourceFormat == nil)
    }
}
