import CustosCore
@testable import CustosServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// CloudTrail and Google Cloud audit records through `POST /v1/ingest`
/// (`format=cloudtrail|gcp|auto`) and `custos ingest`'s `Ingestor`, with gzipped files and
/// CloudTrail log files (the decoders themselves: CustosCoreTests/CloudDecoderTests).
@Suite struct CloudIngestTests {
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CustosCoreTests/Fixtures/sources/\(name)").path
    }

    static func bytes(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: fixture(name)))) }

    static let awsLine = #"{"eventVersion":"1.09","eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","eventTime":"2026-01-05T10:00:00Z","awsRegion":"eu-west-1","recipientAccountId":"111122223333","requestID":"req-1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice"},"requestParameters":{"secretId":"prod/db"},"sourceIPAddress":"192.0.2.7"}"#
    static let gcpLine = #"{"insertId":"g1","timestamp":"2026-01-06T08:00:00Z","protoPayload":{"serviceName":"secretmanager.googleapis.com","methodName":"google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion","resourceName":"projects/p/secrets/s/versions/latest","authenticationInfo":{"principalEmail":"ci@p.iam.gserviceaccount.com"},"status":{}}}"#

    @Test func bodiesOfEachFormat() throws {
        let file = try Self.bytes("cloudtrail-logfile.json")
        let ct = BodyDecoder(format: .cloudtrail, instance: "acct", maxRecordBytes: 4096).decode(file)
        // The log file's records one by one (the whole file is larger than one record may be).
        #expect(ct.records == 3 && ct.events.count == 2 && ct.ignored == 1 && ct.rejected == 0, "\(ct.rejections)")
        #expect(ct.events.allSatisfy { $0.source == .init(kind: "aws", instance: "acct") })
        let gcp = BodyDecoder(format: .gcp, instance: "proj", maxRecordBytes: 1 << 20).decode(try Self.bytes("gcp-secrets.ndjson"))
        #expect(gcp.records == 11 && gcp.events.count == 10 && gcp.ignored == 1 && gcp.rejected == 0, "\(gcp.rejections)")
        let body = Self.awsLine + "\n" + Self.gcpLine + "\n" + vaultPair(id: "r1", path: "secret/data/prod/db", name: "alice")
        let auto = BodyDecoder(format: .auto, instance: "i", maxRecordBytes: 1 << 20).decode(Array(body.utf8))
        #expect(auto.rejected == 0, "\(auto.rejections)")
        #expect(auto.events.map(\.source.kind) == ["aws", "gcp", "vault"])
        #expect(auto.events.map { $0.secret?.path } == ["aws/eu-west-1/secretsmanager/prod/db", "gcp/p/s", "secret/data/prod/db"])
        #expect(WireFormat(rawValue: "cloudtrail")?.sourceFormat == .cloudtrail && WireFormat(rawValue: "gcp")?.sourceFormat == .gcp)
    }

    @Test func overHTTP() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir)
        let logFile = try Self.bytes("cloudtrail-logfile.json")
        let gz = try ServeTests.gzip(logFile)
        try await buildApplication(state: state).test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(t.ingest)"]
            let gzAuth: HTTPFields = [.authorization: "Bearer \(t.ingest)", .contentEncoding: "gzip"]
            let cases: [(String, HTTPFields, [UInt8], Int, Int)] = [
                ("cloudtrail", auth, logFile, 2, 0),
                ("cloudtrail", gzAuth, gz, 0, 2),
                ("gcp", auth, try Self.bytes("gcp-secrets.ndjson"), 10, 0),
                ("auto", auth, Array(Self.gcpLine.utf8), 1, 0),
            ]
            for (format, headers, body, accepted, duplicates) in cases {
                try await client.execute(uri: "/v1/ingest?format=\(format)&instance=acme", method: .post, headers: headers, body: ByteBuffer(bytes: body)) { r in
                    #expect(r.status == .ok, "\(format): \(String(buffer: r.body))")
                    let o = ServeTests.json(r.body) as? [String: Any]
                    #expect(o?["accepted"] as? Int == accepted && o?["duplicates"] as? Int == duplicates, "\(format): \(String(buffer: r.body))")
                }
            }
            try await client.execute(uri: "/v1/ingest?format=aws", method: .post, headers: auth, body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("cloudtrail, gcp"))
            }
        }
    }

    @Test func ingestorReadsGzippedLogFilesAndCountsBatchReadsOnce() throws {
        let dir = TempDir(), inputs = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let logFile = try Self.bytes("cloudtrail-logfile.json")
        let gzPath = inputs.path + "/111122223333_CloudTrail_eu-west-1_20260105T1000Z_abc.json.gz"
        try Data(try ServeTests.gzip(logFile)).write(to: URL(fileURLWithPath: gzPath))
        let badPath = inputs.path + "/broken.json.gz"
        try Data([0x1F, 0x8B, 0x08, 0x00, 1, 2, 3, 4, 5]).write(to: URL(fileURLWithPath: badPath))
        let ingestor = Ingestor(store: store, format: .cloudtrail, instance: "acct", batchSize: 1)
        try ingestor.ingest(path: gzPath)
        try ingestor.ingest(path: Self.fixture("aws-1.json"))
        // The per-secret GetSecretValue of aws-1's batch, and two records of the log file,
        // are duplicates.
        try ingestor.ingest(path: Self.fixture("cloudtrail-secrets.ndjson"))
        try ingestor.ingest(path: Self.fixture("cloudtrail-logfile.json"))
        try ingestor.ingest(path: badPath)
        let s = try ingestor.finish()
        #expect(s.accepted == 2 + 2 + 12 && s.duplicates == 3 + 2 && s.ignored == 1 + 4 + 1 && s.rejected == 1,
                "\(s.accepted) \(s.duplicates) \(s.ignored) \(s.rejected) \(s.rejections.map(\.rejection.reason))")
        #expect(s.rejections.first?.rejection.reason.hasPrefix("gzip: ") == true)
        #expect(s.rejections.first?.file == badPath)
        #expect(IngestFormat(rawValue: "gcp")?.sourceFormat == .gcp && IngestFormat(rawValue: "cloudtrail")?.sourceFormat == .cloudtrail)

        // GCP entries: gzipped NDJSON is decompressed the same way; re-ingest gives duplicates.
        let gcpDir = TempDir()
        let gcpStore = try DataStore(directory: gcpDir.path, origin: "t.example/log")
        let gcpPath = inputs.path + "/gcp.ndjson.gz"
        try Data(try ServeTests.gzip(try Self.bytes("gcp-secrets.ndjson"))).write(to: URL(fileURLWithPath: gcpPath))
        let g = Ingestor(store: gcpStore, format: .gcp, instance: "proj", batchSize: 4)
        try g.ingest(path: gcpPath)
        try g.ingest(path: Self.fixture("gcp-secrets.ndjson"))
        let gs = try g.finish()
        #expect(gs.accepted == 10 && gs.duplicates == 10 && gs.ignored == 2 && gs.rejected == 0, "\(gs.rejections.map(\.rejection.reason))")
        #expect(gs.lines == 22)
    }
}
