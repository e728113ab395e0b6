import CustosCore
@testable import CustosServer
import CustosStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Azure Key Vault, Kubernetes audit, Infisical, 1Password and Doppler records through
/// `POST /v1/ingest` (`format=azure|kubernetes|infisical|onepassword|doppler|auto`) and
/// `custos ingest`'s `Ingestor` (the decoders themselves: CustosCoreTests/SaaSDecoderTests).
@Suite struct SaaSIngestTests {
    static let azure = """
        {"records": [
          {"time": "2026-01-15T08:00:00.1234567Z", "category": "AuditEvent", "operationName": "SecretGet",
           "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV-ONE",
           "resultType": "Success", "correlationId": "c-1", "callerIpAddress": "192.0.2.9",
           "identity": {"claim": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "ada@example.com"}},
           "properties": {"id": "https://kv-one.vault.azure.net/secrets/db-password/v1", "httpStatusCode": 403}},
          {"time": "2026-01-15T08:00:01.0000000Z", "category": "AuditEvent", "operationName": "SecretGet",
           "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV-ONE",
           "resultType": "Success", "correlationId": "c-2", "identity": {"claim": {"appid": "app-1"}},
           "properties": {"id": "https://kv-one.vault.azure.net/secrets/db-password", "httpStatusCode": 200}},
          {"time": "2026-01-15T08:00:02.0000000Z", "category": "AuditEvent", "operationName": "VaultGet",
           "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV-ONE", "correlationId": "c-3"}
        ]}
        """
    static func k8s(_ id: String, _ stage: String, _ verb: String, _ user: String, code: Int) -> String {
        #"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"\#(id)","stage":"\#(stage)","verb":"\#(verb)","user":{"username":"\#(user)"},"sourceIPs":["10.0.0.5"],"objectRef":{"resource":"secrets","namespace":"payments","name":"db-creds"},"responseStatus":{"code":\#(code)},"responseObject":{"data":{"password":"S1VCRS1DQU5BUlk="}},"stageTimestamp":"2026-01-20T10:00:00.123456Z"}"#
    }
    static let kubernetes = [k8s("a1", "RequestReceived", "get", "system:serviceaccount:payments:api", code: 200),
                             k8s("a1", "ResponseComplete", "get", "system:serviceaccount:payments:api", code: 200),
                             k8s("a2", "ResponseComplete", "get", "mallory", code: 403)].joined(separator: "\n")
    static let infisical = #"{"auditLogs":[{"id":"r1","createdAt":"2026-03-02T10:15:00.000Z","projectId":"p1","ipAddress":"192.0.2.44","userAgentType":"cli","event":{"type":"get-secret","metadata":{"environment":"prod","secretPath":"/","secretKey":"DB_PASSWORD"}},"actor":{"type":"identity","metadata":{"identityId":"i1","name":"deployer"}}},{"id":"r2","createdAt":"2026-03-02T10:16:00.000Z","projectId":"p1","event":{"type":"login-identity-universal-auth-failed","metadata":{"identityId":"i1"}},"actor":{"type":"unknownUser","metadata":{}}}]}"#
    static let onepassword = #"{"cursor":"c","has_more":false,"items":[{"uuid":"U1","timestamp":"2026-02-10T09:30:12.345-05:00","used_version":1,"vault_uuid":"v1","item_uuid":"i1","action":"reveal","user":{"uuid":"P1","name":"Ada","email":"ada@example.com"},"client":{"app_name":"1Password for Mac","ip_address":"198.51.100.20"}}]}"#
    static let doppler = #"{"source":"doppler","type":"security.secret_read","user":{"kind":"apiToken","slug":"t1","type":{"id":"x","name":"ci"}},"session":{"ip":"198.51.100.7","method":"CLI"},"createdAt":"2026-06-15T00:01:16.402Z","metadata":{"secrets":[{"p":"payments","e":"prd","c":"prd","s":"STRIPE_KEY","v":1},{"p":"payments","e":"prd","c":"prd","s":"DB_URL","v":1}]}}"#

    static func decode(_ format: WireFormat, _ body: String) -> BodyDecoder.Result {
        BodyDecoder(format: format, instance: "i", maxRecordBytes: 1 << 20).decode(Array(body.utf8))
    }

    @Test func explicitFormats() {
        let az = Self.decode(.azure, Self.azure)
        #expect(az.records == 1 && az.events.count == 2 && az.ignored == 1 && az.rejected == 0, "\(az.rejections)")
        #expect(az.events.map(\.outcome) == [.denied, .success] && az.events.map(\.identity.kind) == [.human, .service])
        #expect(az.events.allSatisfy { $0.source == .init(kind: "azure", instance: "i") && $0.secret?.path == "azure/kv-one/db-password" })
        let k = Self.decode(.kubernetes, Self.kubernetes)
        #expect(k.records == 3 && k.events.count == 2 && k.ignored == 1 && k.rejected == 0, "\(k.rejections)")
        #expect(k.events.map(\.outcome) == [.success, .denied] && k.events.map(\.identity.kind) == [.service, .human])
        #expect(k.events.allSatisfy { $0.secret?.path == "k8s/i/payments/db-creds" })
        #expect(k.events.allSatisfy { !String(decoding: $0.canonicalJSON(), as: UTF8.self).contains("S1VCRS1DQU5BUlk=") })
        let inf = Self.decode(.infisical, Self.infisical)
        #expect(inf.events.map(\.action) == [.read, .login] && inf.events.map(\.outcome) == [.success, .denied], "\(inf.rejections)")
        let op = Self.decode(.onepassword, Self.onepassword)
        #expect(op.events.count == 1 && op.events.first?.secret?.path == "1password/v1/i1" && op.events.first?.identity.kind == .human)
        let dp = Self.decode(.doppler, Self.doppler)
        #expect(dp.events.map { $0.secret?.path } == ["doppler/payments/prd/STRIPE_KEY", "doppler/payments/prd/DB_URL"])
        #expect(dp.events.allSatisfy { $0.identity.kind == .api_key && $0.identity.name == "ci" })
        // A JSON array of records works for these formats as for github.
        let array = "[" + Self.k8s("b1", "ResponseComplete", "delete", "kubernetes-admin", code: 200) + ", 5]"
        let arr = Self.decode(.kubernetes, array)
        #expect(arr.events.count == 1 && arr.events.first?.identity.kind == .root && arr.rejected == 1)
        #expect(WireFormat(rawValue: "onepassword")?.sourceFormat == .onepassword && WireFormat.azure.sourceFormat == .azure)
    }

    @Test func autoRecognisesEachSource() {
        let lines = [Self.k8s("c1", "ResponseComplete", "get", "alice", code: 200), Self.infisical, Self.onepassword, Self.doppler,
                     Self.azure.replacingOccurrences(of: "\n", with: " ")]
        let body = lines.joined(separator: "\n") + "\n" + SourceIngestTests.vaultLines
        let r = Self.decode(.auto, body)
        #expect(r.rejected == 0, "\(r.rejections)")
        #expect(r.events.map(\.source.kind) == ["kubernetes", "infisical", "infisical", "1password", "doppler", "doppler", "azure", "azure", "vault"])
    }

    @Test func overHTTPWithDuplicates() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir)
        try await buildApplication(state: state).test(.live) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(t.ingest)"]
            let posts: [(String, String, Int, Int)] = [
                ("azure", Self.azure, 2, 0), ("kubernetes", Self.kubernetes, 2, 0), ("infisical", Self.infisical, 2, 0),
                ("onepassword", Self.onepassword, 1, 0), ("doppler", Self.doppler, 2, 0),
                ("azure", Self.azure, 0, 2), ("kubernetes", Self.kubernetes, 0, 2), ("doppler", Self.doppler, 0, 2)]
            for (format, body, accepted, duplicates) in posts {
                try await client.execute(uri: "/v1/ingest?format=\(format)&instance=acme", method: .post, headers: auth, body: ByteBuffer(string: body)) { r in
                    #expect(r.status == .ok, "\(format): \(String(buffer: r.body))")
                    let json = ServeTests.json(r.body) as? [String: Any]
                    #expect(json?["accepted"] as? Int == accepted && json?["duplicates"] as? Int == duplicates, "\(format): \(String(buffer: r.body))")
                }
            }
            try await client.execute(uri: "/v1/ingest?format=vaultx", method: .post, headers: auth, body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("azure, kubernetes, infisical, onepassword, doppler"))
            }
        }
    }

    @Test func ingestorReadsEachFormatAndCountsDuplicates() throws {
        let dir = TempDir(), inputs = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        for (format, body, accepted, ignored) in [(IngestFormat.azure, Self.azure, 2, 1), (.kubernetes, Self.kubernetes, 2, 1),
                                                  (.infisical, Self.infisical, 2, 0), (.onepassword, Self.onepassword, 1, 0),
                                                  (.doppler, Self.doppler, 2, 0)] {
            let file = inputs.path + "/\(format.rawValue).json"
            try body.write(toFile: file, atomically: true, encoding: .utf8)
            let ingestor = Ingestor(store: store, format: format, instance: "prod", batchSize: 1)
            try ingestor.ingest(path: file)
            try ingestor.ingest(path: file)
            let s = try ingestor.finish()
            #expect(s.accepted == accepted && s.duplicates == accepted && s.ignored == 2 * ignored && s.rejected == 0, "\(format): \(s)")
            #expect(format.sourceFormat?.rawValue == format.rawValue)
        }
        var q = EventQuery()
        q.secret = "k8s/prod/payments/*"
        let k8s = try store.events(q)
        #expect(k8s.count == 2 && k8s.allSatisfy { $0.event.source.kind == "kubernetes" })
        var denied = EventQuery()
        denied.outcomes = [.denied]
        // Azure 403, Kubernetes 403, Infisical failed login.
        #expect(try store.events(denied).map(\.event.source.kind).sorted() == ["azure", "infisical", "kubernetes"])
    }
}
