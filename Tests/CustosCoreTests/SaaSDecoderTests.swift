import Foundation
import Testing
@testable import CustosCore

/// The Azure Key Vault, Kubernetes audit, Infisical, 1Password Events and Doppler decoders
/// (Sources/CustosCore/Decoders), on the carried public records (Fixtures/sources/azure-1,
/// k8s-1, onepassword-1, doppler-1) and on records written from the documented field sets
/// (azure-records, k8s-audit, infisical-audit, onepassword-events, doppler-written: see their
/// .src files).
@Suite("SaaS and cloud vault decoders")
struct SaaSDecoderTests {
    static func decode(_ file: String, _ format: SourceFormat, instance: String = "default") throws -> Decoded {
        Decoded(SourceStreamDecoder.decodeAll(try Fixture.data("sources/" + file), decoder: format.decoder(instance: instance)))
    }

    static func decodeText(_ text: String, _ format: SourceFormat, instance: String = "default") -> Decoded {
        Decoded(SourceStreamDecoder.decodeAll(Array(text.utf8), decoder: format.decoder(instance: instance)))
    }

    static func node(_ text: String) throws -> JSONNode { try JSONNode.parse(Array(text.utf8)) }

    /// Every event is a valid canonical custos.event/v1 that decodes back to itself.
    static func expectCanonical(_ d: Decoded) throws {
        for (e, _) in d.events { #expect(try AccessEvent.decode(e.canonicalJSON()) == e) }
    }

    // MARK: - Azure Key Vault

    @Test("Azure: the carried 403 SecretGet is denied although resultType says Success")
    func azureCarriedDenied() throws {
        let d = try Self.decode("azure-1.json", .azure)
        #expect(d.rejected.isEmpty && d.ignored.isEmpty, "\(d.rejected) \(d.ignored)")
        let e = try #require(d.events.first?.event)
        #expect(d.events.count == 1)
        #expect(e.action == .read && e.outcome == .denied && e.reason == "forbidden")
        #expect(e.source == .init(kind: "azure", instance: "default"))
        // Vault from resourceId (…/VAULTS/test), secret from properties.id, lowercased.
        #expect(e.secret == .init(store: "azure", path: "azure/test/a"))
        // upn through an application (appid present): a person, delegated.
        #expect(e.identity == .init(id: "d4ba3e84-0444-4841-aaf7-XXXXX", name: "john.doe@dummy.onmicrosoft.com", kind: .human, method: "aad_delegated"))
        #expect(e.origin == .init(ip: "192.0.2.1"))
        #expect(e.time.description == "2024-04-02T08:20:49.2681600Z", "7 fraction digits kept")
        #expect(e.requestID == "1b3aa393-f142-4329-8b1f-c5222119ae35")
        // resultDescription (it quotes the caller and the resource) is never copied.
        #expect(!String(decoding: e.canonicalJSON(), as: UTF8.self).contains("not authorized"))
        try Self.expectCanonical(d)
    }

    @Test("Azure: records batch, operations, status codes, claims in short and URI form")
    func azureRecords() throws {
        let d = try Self.decode("azure-records.json", .azure, instance: "contoso")
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.reason) == ["Azure Key Vault operation without secret access (VaultGet)"])
        let e = d.events.map(\.event)
        #expect(e.count == 6)
        #expect(e.map(\.action) == [.read, .write, .list, .delete, .read, .read])
        #expect(e.map { $0.secret?.path } == ["azure/kv-payments/db-password", "azure/kv-payments/stripe-key", "azure/kv-payments/*",
                                              "azure/kv-payments/db-password", "azure/kv-payments/old-token", "azure/kv-payments/db-password"])
        #expect(e.map(\.outcome) == [.success, .success, .success, .denied, .error, .success])
        #expect(e.map(\.reason) == [nil, nil, nil, "unauthorized", "not found", nil])
        // Managed identity (appid only, object id under its URI claim name): a service.
        #expect(e[0].identity == .init(id: "5f4e3d2c-0000-4000-8000-00000000b001", name: "8a7b6c5d-0000-4000-8000-00000000c001", kind: .service, method: "aad_app"))
        // upn under its URI claim name: a person.
        #expect(e[1].identity.kind == .human && e[1].identity.name == "ada@contoso.example" && e[1].identity.id == "1a2b3c4d-0000-4000-8000-00000000b002")
        #expect(e[2].identity.kind == .human && e[2].identity.method == "aad_user")
        // 401 without identity: nobody authenticated.
        #expect(e[3].identity.kind == .unknown && e[3].origin == .init(ip: "203.0.113.66"))
        #expect(e[4].identity.kind == .service)
        #expect(e[0].time.description == "2026-01-15T08:00:00.1234567Z" && e[2].time.description == "2026-01-15T08:06:00.0000001Z")
        #expect(Set(e.map(\.id)).count == 6)
        #expect(e.allSatisfy { $0.source.instance == "contoso" && $0.secret?.store == "azure" })
        #expect(d.events.allSatisfy { $0.line == 1 }, "the batch starts on line 1")
        try Self.expectCanonical(d)
    }

    @Test("Azure: outcome falls back to resultSignature, then resultType; bad records are rejected")
    func azureFallbacks() {
        func one(_ extra: String) -> Decoded {
            Self.decodeText(#"{"time":"2026-01-01T00:00:00Z","category":"AuditEvent","operationName":"SecretGet","resourceId":"/x/VAULTS/kv1","properties":{"id":"https://kv1.vault.azure.net/secrets/s1"}\#(extra)}"#, .azure)
        }
        #expect(one(#","resultType":"Success","resultSignature":"Forbidden""#).events.first?.event.outcome == .denied)
        #expect(one(#","resultType":"Success","resultSignature":"Unauthorized""#).events.first?.event.reason == "unauthorized")
        #expect(one(#","resultType":"Success""#).events.first?.event.outcome == .success)
        #expect(one(#","resultType":"Failure""#).events.first?.event.outcome == .error)
        #expect(one("").events.first?.event.outcome == .error)
        // A status code wins over everything else.
        let forbidden = Self.decodeText(#"{"time":"2026-01-01T00:00:00Z","category":"AuditEvent","operationName":"SecretGet","resultType":"Success","resultSignature":"OK","resourceId":"/x/VAULTS/kv1","properties":{"id":"https://kv1.vault.azure.net/secrets/s1","httpStatusCode":403}}"#, .azure)
        #expect(forbidden.events.first?.event.outcome == .denied)
        // The vault from the host when resourceId has none; versions dropped.
        let host = Self.decodeText(#"{"time":"2026-01-01T00:00:00Z","category":"AuditEvent","operationName":"SecretGet","properties":{"id":"https://kv-two.vault.azure.net/secrets/My-Secret/abc123","httpStatusCode":200}}"#, .azure)
        #expect(host.events.first?.event.secret?.path == "azure/kv-two/my-secret")
        let bad = Self.decodeText("""
            {"category":"AuditEvent","operationName":"SecretGet","time":"yesterday"}
            {"category":"AuditEvent","operationName":"SecretGet","time":"2026-01-01T00:00:00Z","resourceId":"/x/VAULTS/kv1","properties":{"id":"https://kv1.vault.azure.net/secrets/../etc"}}
            {"category":"AuditEvent","operationName":"SecretGet","time":"2026-01-01T00:00:00Z","properties":{"id":"/relative"}}
            {"category":"AuditEvent","operationName":7,"time":"2026-01-01T00:00:00Z"}
            {"records":[5]}
            """, .azure)
        #expect(bad.events.isEmpty)
        #expect(bad.rejected.map(\.line) == [1, 2, 3, 4, 5], "\(bad.rejected)")
        #expect(bad.rejected[0].reason == "\"time\" is not a time (RFC 3339)")
    }

    // MARK: - Kubernetes

    /// The carried record has a line break before a `{` in column 1 (from the writeup it was
    /// copied from; the log backend writes one event per line): as NDJSON that reads as a cut
    /// off record, so it is decoded here as the one JSON value it is.
    static func k8sCarried(instance: String) throws -> Decoded {
        var out: [DecodeOutput] = []
        SourceStreamDecoder.decodeValue(try JSONNode.parse(try Fixture.data("sources/k8s-1.json")), line: 1,
                                        decoder: KubernetesAuditDecoder(instance: instance), into: &out)
        return Decoded(out)
    }

    @Test("Kubernetes: the carried forbidden list of secrets by a kubeconfig user")
    func kubernetesCarried() throws {
        let d = try Self.k8sCarried(instance: "minikube")
        #expect(d.rejected.isEmpty && d.ignored.isEmpty, "\(d.rejected)")
        let e = try #require(d.events.first?.event)
        #expect(e.action == .list && e.outcome == .denied && e.reason == "forbidden")
        // A list names no single secret.
        #expect(e.secret == .init(store: "kubernetes", path: "k8s/minikube/wareville/*", namespace: "wareville"))
        #expect(e.identity == .init(name: "mayor-malware", kind: .human))
        #expect(e.origin == .init(ip: "192.168.49.1"))
        #expect(e.time.description == "2024-10-29T12:20:30.666165Z", "stageTimestamp, microseconds")
        #expect(e.requestID == "a02486f1-3a7c-4bca-8bcb-9019fa43dac4")
        // The response object's message (it names the user and namespace) is not copied.
        #expect(!String(decoding: e.canonicalJSON(), as: UTF8.self).contains("cannot list"))
        try Self.expectCanonical(d)
        // Through the stream splitter the broken line is a cut-off record, rejected without an event.
        let framed = try Self.decode("k8s-1.json", .kubernetes)
        #expect(framed.events.isEmpty && framed.rejected.first?.reason.hasPrefix("record cut off") == true, "\(framed.rejected)")
        #expect(try Self.k8sCarried(instance: "minikube").events.map(\.event) == d.events.map(\.event))
    }

    @Test("Kubernetes: stages, verbs, identities, configmaps, EventList, impersonation")
    func kubernetesAudit() throws {
        let d = try Self.decode("k8s-audit.ndjson", .kubernetes, instance: "prod-eu")
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.line) == [1, 3])
        #expect(d.ignored[0].reason == "Kubernetes audit stage RequestReceived (only ResponseComplete is counted)")
        #expect(d.ignored[1].reason == "Kubernetes audit event for another resource than secrets")
        let e = d.events.map(\.event)
        #expect(d.events.map(\.line) == [2, 4, 5, 6, 7, 8, 9, 10, 11, 12])
        #expect(e.map(\.action) == [.read, .list, .delete, .read, .write, .read, .read, .read, .read, .write])
        #expect(e.map { $0.secret?.path } == [
            "k8s/prod-eu/payments/db-creds", "k8s/prod-eu/*/*", "k8s/prod-eu/payments/old-cert", "k8s/prod-eu/payments/db-creds",
            "k8s/prod-eu/payments/api-token", "k8s/prod-eu/payments/db-creds", "k8s/prod-eu/payments/db-creds",
            "k8s/prod-eu/kube-system/bootstrap-token-abcdef", "k8s/prod-eu/payments/db-creds", "k8s/prod-eu/payments/db-creds"])
        #expect(e.map(\.identity.kind) == [.service, .root, .root, .service, .human, .service, .human, .unknown, .service, .human])
        #expect(e.map(\.outcome) == [.success, .success, .success, .success, .success, .denied, .success, .denied, .success, .success])
        #expect(e[5].reason == "forbidden" && e[7].reason == "unauthorized")
        #expect(e[0].identity == .init(name: "system:serviceaccount:payments:api", kind: .service, method: "serviceaccount"))
        #expect(e[3].identity.method == "node" && e[3].identity.name == "system:node:worker-1")
        #expect(e[8].identity == .init(name: "system:serviceaccount:payments:api", kind: .service, method: "impersonation"))
        #expect(e[0].time.description == "2026-01-20T10:00:00.123456Z")
        #expect(e[2].origin == .init(ip: "192.0.2.50"), "the first of sourceIPs")
        #expect(e[4].origin == .init(ip: "2001:db8::7"))
        #expect(e[1].secret?.namespace == nil && e[0].secret?.namespace == "payments")
        #expect(Set(e.map(\.id)).count == e.count)
        try Self.expectCanonical(d)
    }

    @Test("Kubernetes: secret data in requestObject/responseObject never reaches an event")
    func kubernetesCanary() throws {
        let d = try Self.decode("k8s-audit.ndjson", .kubernetes)
        #expect(!d.events.isEmpty)
        for (e, _) in d.events {
            let json = String(decoding: e.canonicalJSON(), as: UTF8.self)
            #expect(!json.contains("CANARY") && !json.contains("Q1VTVE9TLUNBTkFSWS1rOHMtdmFsdWU="), "\(json)")
            #expect(!String(describing: e).contains("CANARY"))
        }
        for o in d.ignored { #expect(!o.reason.contains("CANARY")) }
        // Also when the canary is where a name would be read from another object.
        let tricky = #"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x1","stage":"ResponseComplete","verb":"get","user":{"username":"u"},"objectRef":{"resource":"secrets","namespace":"n","name":"s"},"responseStatus":{"code":200},"stageTimestamp":"2026-01-01T00:00:00Z","responseObject":{"metadata":{"name":"CANARY"},"data":{"k":"CANARY"}},"requestObject":{"objectRef":{"name":"CANARY"}}}"#
        let t = Self.decodeText(tricky, .kubernetes)
        #expect(t.events.count == 1 && !String(decoding: t.events[0].event.canonicalJSON(), as: UTF8.self).contains("CANARY"))
    }

    @Test("Kubernetes: other stages, verbs and bad records")
    func kubernetesEdges() {
        func rec(_ stage: String, _ verb: String, name: String? = "s", ns: String? = "n", code: String = "200", group: String = "") -> String {
            let nameField = name.map { #","name":"\#($0)""# } ?? ""
            let nsField = ns.map { #","namespace":"\#($0)""# } ?? ""
            return #"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"id-\#(stage)-\#(verb)","stage":"\#(stage)","verb":"\#(verb)","user":{"username":"u"},"objectRef":{"resource":"secrets"\#(nsField)\#(nameField)\#(group)},"responseStatus":{"code":\#(code)},"stageTimestamp":"2026-01-01T00:00:00.000001Z"}"#
        }
        let body = [rec("ResponseStarted", "watch"), rec("Panic", "get"), rec("ResponseComplete", "deletecollection", name: nil),
                    rec("ResponseComplete", "get", name: nil), rec("ResponseComplete", "get", name: "../x"),
                    rec("ResponseComplete", "get", code: "500"), rec("ResponseComplete", "proxy"),
                    rec("ResponseComplete", "get", group: #","apiGroup":"example.com""#)].joined(separator: "\n")
        let d = Self.decodeText(body, .kubernetes)
        #expect(d.ignored.map(\.line) == [1, 2, 7, 8], "\(d.ignored)")
        #expect(d.ignored[1].reason == "Kubernetes audit stage Panic (only ResponseComplete is counted)")
        #expect(d.rejected.map(\.line) == [4, 5], "\(d.rejected)")
        #expect(d.events.map(\.line) == [3, 6])
        #expect(d.events[0].event.action == .delete && d.events[0].event.secret?.path == "k8s/default/n/*")
        #expect(d.events[1].event.outcome == .error && d.events[1].event.reason == "server error 500")
    }

    // MARK: - Infisical

    @Test("Infisical: reads, bulk read, batch writes, delete, failed identity login")
    func infisical() throws {
        let d = try Self.decode("infisical-audit.json", .infisical)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.reason) == ["Infisical audit event without secret access (create-folder)"])
        let e = d.events.map(\.event)
        let p = "infisical/6f1c2e5a9b0d4c3e8f7a6b5c"
        #expect(e.map(\.action) == [.read, .read, .write, .write, .delete, .login, .read])
        #expect(e.map { $0.secret?.path } == ["\(p)/prod/db/DB_PASSWORD", "\(p)/production/*", "\(p)/staging/API_KEY",
                                              "\(p)/staging/hooks/WEBHOOK_SECRET", "\(p)/dev/OLD_TOKEN", nil, "\(p)/prod/db/DB_PASSWORD"])
        #expect(e.map { $0.secret?.environment } == ["prod", "prod", "staging", "staging", "dev", nil, "prod"])
        #expect(e.map(\.identity.kind) == [.human, .service, .api_key, .api_key, .human, .service, .human])
        #expect(e[0].identity == .init(id: "9d8c7b6a-0000-4000-8000-000000000001", name: "ada@example.com", kind: .human, method: "web"))
        #expect(e[1].identity.name == "k8s-operator" && e[1].identity.method == "k8-operator")
        #expect(e[2].identity.method == "service_token" && e[2].identity.name == "ci-token")
        // Failed machine identity login: denied, attributed to the identity it tried.
        #expect(e[5].outcome == .denied && e[5].reason == "authentication failed")
        #expect(e[5].identity.id == "4e5f6a7b-0000-4000-8000-000000000009" && e[5].identity.method == "universal")
        #expect(e.enumerated().allSatisfy { $0.offset == 5 || $0.element.outcome == .success })
        #expect(e[0].origin == .init(ip: "192.0.2.44"))
        // Times: ISO Z, epoch milliseconds, +01:00 offset.
        #expect(e[0].time.description == "2026-03-02T10:15:00.000Z")
        #expect(e[1].time.description == "2026-03-02T10:16:00.123Z")
        #expect(e[2].time.description == "2026-03-02T10:00:00.5Z")
        #expect(Set(e.map(\.id)).count == e.count)
        try Self.expectCanonical(d)
    }

    @Test("Infisical: single rows and rejections")
    func infisicalRows() {
        let good = #"{"id":"r1","createdAt":"2026-01-01T00:00:00Z","projectId":"p1","event":{"type":"get-secret","metadata":{"environment":"dev","secretPath":"/","secretKey":"K"}},"actor":{"type":"platform","metadata":{}}}"#
        let d = Self.decodeText([good,
                                 good.replacingOccurrences(of: #""secretKey":"K""#, with: #""secretKey":"a/b""#),
                                 good.replacingOccurrences(of: #""secretPath":"/""#, with: #""secretPath":"/../x""#),
                                 good.replacingOccurrences(of: #""projectId":"p1","#, with: ""),
                                 good.replacingOccurrences(of: "2026-01-01T00:00:00Z", with: "2026-01-01T00:00:00")].joined(separator: "\n"), .infisical)
        #expect(d.events.count == 1 && d.events[0].event.identity.kind == .service && d.events[0].event.secret?.path == "infisical/p1/dev/K")
        #expect(d.rejected.map(\.line) == [2, 3, 4, 5], "\(d.rejected)")
    }

    // MARK: - 1Password

    /// The carried file is an Elastic test wrapper: the API's records are the JSON strings in
    /// `events[].message`.
    static func onePasswordCarried() throws -> [UInt8] {
        let wrapper = try JSONNode.parse(try Fixture.data("sources/onepassword-1.json"))
        let messages = try #require(wrapper["events"]?.arrayValue).compactMap { $0["message"]?.stringValue }
        #expect(messages.count == 2)
        return Array(messages.joined(separator: "\n").utf8)
    }

    @Test("1Password: the carried item usages (one without action) are reads by a person")
    func onePasswordCarriedRecords() throws {
        let d = Decoded(SourceStreamDecoder.decodeAll(try Self.onePasswordCarried(), decoder: OnePasswordEventsDecoder()))
        #expect(d.rejected.isEmpty && d.ignored.isEmpty, "\(d.rejected)")
        let e = d.events.map(\.event)
        #expect(e.count == 2 && e.allSatisfy { $0.action == .read && $0.outcome == .success })
        #expect(e.allSatisfy { $0.secret == .init(store: "1password", path: "1password/jaqxqf5qylslqiitnduawrndc5/bvwmmwxisuca7wbehrbyqhag54") })
        #expect(e[0].identity == .init(id: "OJQGU46KAPROEJLCK674RHSAY5", name: "email@1password.com", kind: .human, method: "1Password Browser Extension"))
        #expect(e[0].origin == .init(ip: "89.160.20.156"))
        #expect(e.map(\.time.description) == ["2021-08-30T18:57:42.484Z", "2021-08-30T19:10:00.123Z"])
        #expect(e.map(\.requestID) == ["MCQODBBWJD5HISKYNP3HJPV2DV", "5HBWJDWCQADISKY2DVBNP3HJPV"])
        try Self.expectCanonical(d)
        // The test wrapper itself is no record of the API: rejected, not guessed at.
        let wrapper = try Self.decode("onepassword-1.json", .onepassword)
        #expect(wrapper.events.isEmpty && wrapper.rejected.map(\.reason) == ["missing \"uuid\""])
    }

    @Test("1Password: a response page, service accounts, ignored actions, denied sign-ins")
    func onePasswordPage() throws {
        let d = try Self.decode("onepassword-events.json", .onepassword)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.reason) == ["1Password item usage select-sso-provider (no secret value used)"])
        let e = d.events.map(\.event)
        #expect(e.map(\.action) == [.read, .read, .write, .login, .login])
        #expect(e.map(\.identity.kind) == [.human, .service, .service, .human, .human])
        #expect(e.map(\.outcome) == [.success, .success, .success, .denied, .success])
        #expect(e[3].reason == "sign-in credentials_failed" && e[3].identity.method == "password_secret_bad" && e[3].secret == nil)
        #expect(e[3].origin == .init(ip: "203.0.113.45"))
        #expect(e[1].secret?.path == "1password/jaqxqf5qylslqiitnduawrndc5/q3w4e5r6t7y8u9i0o1p2a3s4d5")
        // Offsets: -05:00 and +00:00.
        #expect(e[0].time.description == "2026-02-10T14:30:12.345Z" && e[2].time.description == "2026-02-10T14:33:00Z")
        #expect(Set(e.map(\.id)).count == e.count)
        try Self.expectCanonical(d)
    }

    // MARK: - Doppler

    @Test("Doppler: the carried stream lines (secrets update, unrelated activity, dashboard read)")
    func dopplerCarried() throws {
        let d = try Self.decode("doppler-1.ndjson", .doppler)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.reason) == ["Doppler activity without secret access (team.group.members.add)"])
        let e = d.events.map(\.event)
        #expect(e.map(\.action) == [.write, .write, .write, .read])
        #expect(e.map { $0.secret?.path } == ["doppler/example-project-1/example-config-1/EXAMPLE_SECRET_1",
                                              "doppler/example-project-1/example-config-1/EXAMPLE_SECRET_2",
                                              "doppler/example-project-1/example-config-1/EXAMPLE_SECRET_3",
                                              "doppler/example-project-41/example-config-10/EXAMPLE_SECRET_113"])
        #expect(e[0].identity == .init(id: "11552e34-8e56-4101-8ec9-02a1f3646061", name: "Xena Harris", kind: .service))
        #expect(e[0].requestID == "uMOyRkhx4h25jtmjJbQKY94t")
        #expect(e[3].identity == .init(id: "fcb8e8ff-0036-45c4-8a0b-6c16df16d9bd", name: "grace.moore@example.com", kind: .human, method: "dashboard"))
        #expect(e[3].secret?.environment == "dev" && e[3].origin == .init(ip: "203.0.113.2"))
        #expect(e[3].time.description == "2026-06-13T01:11:18.125Z")
        #expect(e.allSatisfy { $0.outcome == .success }, "Doppler logs no denials")
        #expect(Set(e.map(\.id)).count == 4)
        try Self.expectCanonical(d)
    }

    @Test("Doppler: service account and token reads, references, diff removals, Datadog shape, API entries")
    func dopplerWritten() throws {
        let d = try Self.decode("doppler-written.ndjson", .doppler)
        #expect(d.rejected.isEmpty, "\(d.rejected)")
        #expect(d.ignored.map(\.line) == [5])
        let e = d.events.map(\.event)
        #expect(e.map(\.action) == [.read, .read, .read, .write, .delete, .read])
        #expect(e.map { $0.secret?.path } == ["doppler/payments/prd/STRIPE_KEY", "doppler/shared/prd_eu/SENTRY_DSN",
                                              "doppler/payments/stg/DATABASE_URL", "doppler/payments/dev/STRIPE_KEY",
                                              "doppler/payments/dev/LEGACY_TOKEN", "doppler/example-project-7/prod_api/DATABASE_URL"])
        #expect(e.map { $0.secret?.environment } == ["prod", "prod", "staging", "dev", "dev", "prod"])
        #expect(e.map(\.identity.kind) == [.service, .service, .api_key, .human, .human, .human])
        #expect(e[2].identity == .init(id: "d046f16d-f3ce-415a-877c-1c3560171dd7", name: "ci-deploy", kind: .api_key, method: "cli"))
        #expect(e[0].identity.method == "api" && e[0].origin == .init(ip: "198.51.100.7"))
        // Times: epoch float, +02:00 offset.
        #expect(e[0].time.description == "2026-06-15T01:01:16.402Z")
        #expect(e[2].time.description == "2026-06-15T00:01:16.402Z")
        #expect(Set(e.map(\.id)).count == e.count)
        try Self.expectCanonical(d)
    }

    // MARK: - Shared

    @Test("re-ingesting gives the same ids; another instance other ids")
    func deterministicIDs() throws {
        let files: [(String, SourceFormat)] = [("azure-1.json", .azure), ("azure-records.json", .azure),
                                               ("k8s-audit.ndjson", .kubernetes), ("infisical-audit.json", .infisical),
                                               ("onepassword-events.json", .onepassword), ("doppler-1.ndjson", .doppler),
                                               ("doppler-written.ndjson", .doppler)]
        var all: [String] = []
        for (file, format) in files {
            let a = try Self.decode(file, format).events.map(\.event)
            let b = try Self.decode(file, format).events.map(\.event)
            #expect(a == b && !a.isEmpty, "\(file)")
            let c = try Self.decode(file, format, instance: "other").events.map(\.event.id)
            #expect(Set(a.map(\.id)).isDisjoint(with: c), "\(file)")
            all += a.map(\.id)
        }
        // No two events of different records or sources share an id.
        #expect(Set(all).count == all.count)
        // The same records reformatted (compact lines instead of a pretty batch): the same events.
        let pretty = try Fixture.data("sources/azure-records.json")
        let compact = JSONNode.compact(try JSONNode.parse(pretty))
        let again = Decoded(SourceStreamDecoder.decodeAll(compact, decoder: AzureKeyVaultDecoder()))
        let original = try Self.decode("azure-records.json", .azure)
        #expect(again.events.map(\.event.id) == original.events.map(\.event.id) && again.events.count == 6)
    }

    @Test("timestamps of these sources")
    func timeStyles() {
        let cases: [(JSONNode, String?)] = [
            (.string("2024-04-02T08:20:49.2681600Z"), "2024-04-02T08:20:49.2681600Z"),   // Azure, 7 digits
            (.string("2024-10-29T12:20:30.666165Z"), "2024-10-29T12:20:30.666165Z"),     // Kubernetes, µs
            (.string("2026-02-10T09:30:12.345-05:00"), "2026-02-10T14:30:12.345Z"),      // 1Password, offset
            (.string("2026-06-15T02:01:16.402+02:00"), "2026-06-15T00:01:16.402Z"),
            (.number("1781485276.402"), "2026-06-15T01:01:16.402Z"),                     // epoch float
            (.number("1772446560123"), "2026-03-02T10:16:00.123Z"),                      // epoch ms
            (.string("1772446560123"), "2026-03-02T10:16:00.123Z"),
            (.string("2026-03-02T11:00:00.5+01:00"), "2026-03-02T10:00:00.5Z"),
            (.string("2026-03-02T10:00:00"), nil),
        ]
        for (v, want) in cases { #expect(SourceTime.parse(v)?.description == want, "\(v)") }
    }

    /// One record of each format, and of formats these decoders must leave alone.
    static func samples() throws -> (own: [(SourceFormat, JSONNode)], foreign: [(String, JSONNode)]) {
        var own: [(SourceFormat, JSONNode)] = []
        own.append((.azure, try JSONNode.parse(try Fixture.data("sources/azure-1.json"))))
        own.append((.azure, try JSONNode.parse(try Fixture.data("sources/azure-records.json"))))
        own.append((.kubernetes, try JSONNode.parse(try Fixture.data("sources/k8s-1.json"))))
        for l in try Fixture.lines("sources/k8s-audit.ndjson") { own.append((.kubernetes, try JSONNode.parse(l))) }
        own.append((.infisical, try JSONNode.parse(try Fixture.data("sources/infisical-audit.json"))))
        if let rows = try JSONNode.parse(try Fixture.data("sources/infisical-audit.json"))["auditLogs"]?.arrayValue {
            own += rows.map { (SourceFormat.infisical, $0) }
        }
        own.append((.onepassword, try JSONNode.parse(try Fixture.data("sources/onepassword-events.json"))))
        for l in try Self.onePasswordCarried().split(separator: 0x0A) { own.append((.onepassword, try JSONNode.parse(Array(l)))) }
        for l in try Fixture.lines("sources/doppler-1.ndjson") { own.append((.doppler, try JSONNode.parse(l))) }
        for l in try Fixture.lines("sources/doppler-written.ndjson").prefix(4) { own.append((.doppler, try JSONNode.parse(l))) }
        var foreign: [(String, JSONNode)] = []
        for l in try Fixture.lines("sources/github-secrets.ndjson") { foreign.append(("github", try JSONNode.parse(l))) }
        for l in try Fixture.lines("sources/gitlab-variables.ndjson") { foreign.append(("gitlab", try JSONNode.parse(l))) }
        for l in try Fixture.lines("sources/gitlab-1.json") where !l.isEmpty { foreign.append(("gitlab", try JSONNode.parse(l))) }
        foreign.append(("vault", try Self.node(#"{"time":"2026-01-01T00:00:00Z","type":"response","auth":{"display_name":"x"},"request":{"id":"r","operation":"read","path":"secret/data/a"},"response":{}}"#)))
        foreign.append(("custos", try Self.node(#"{"schema":"custos.event/v1","id":"x","time":"2026-01-01T00:00:00Z","source":{"kind":"azure","instance":"a"},"action":"read","outcome":"success","identity":{"kind":"human"}}"#)))
        // CloudTrail and GCP audit records (shapes of the shared aws-1/aws-5 and gcp-1 fixtures).
        foreign.append(("cloudtrail", try Self.node(#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s"},"eventTime":"2026-01-01T00:00:00Z","eventSource":"secretsmanager.amazonaws.com","eventName":"GetSecretValue","awsRegion":"eu-west-1","sourceIPAddress":"192.0.2.1","requestParameters":{"secretId":"prod/db"},"eventID":"e1","eventType":"AwsApiCall","recipientAccountId":"1"}"#)))
        foreign.append(("cloudtrail", try Self.node(#"{"Records":[{"eventName":"GetSecretValue","eventTime":"2026-01-01T00:00:00Z","eventSource":"secretsmanager.amazonaws.com"}]}"#)))
        foreign.append(("gcp", try Self.node(#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion","resourceName":"projects/1/secrets/db/versions/1","authenticationInfo":{"principalEmail":"a@b.iam.gserviceaccount.com"},"requestMetadata":{"callerIp":"192.0.2.1"},"status":{}},"insertId":"i1","resource":{"type":"audited_resource"},"timestamp":"2026-01-01T00:00:00.123456Z","severity":"INFO","logName":"projects/1/logs/cloudaudit.googleapis.com%2Fdata_access","operation":{"id":"o1"}}"#)))
        foreign.append(("azure-activity", try Self.node(#"{"time":"2026-01-01T00:00:00Z","resourceId":"/SUBSCRIPTIONS/1/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM1","operationName":"MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE","category":"Administrative"}"#)))
        foreign.append(("k8s-event", try Self.node(#"{"kind":"Event","apiVersion":"v1","metadata":{"name":"pod.1"},"reason":"Scheduled","involvedObject":{"kind":"Pod"}}"#)))
        return (own, foreign)
    }

    @Test("format=auto: each record goes to its own decoder, others' records to none of these")
    func detection() throws {
        let (own, foreign) = try Self.samples()
        let mine: [SourceFormat] = [.azure, .kubernetes, .infisical, .onepassword, .doppler]
        for (format, record) in own {
            #expect(SourceFormat.detect(record) == format, "\(format): \(record.objectKeys)")
            // Exactly one decoder claims it.
            #expect(SourceFormat.allCases.filter { $0.recognizes(record) } == [format], "\(format): \(record.objectKeys)")
        }
        for (name, record) in foreign {
            #expect(mine.allSatisfy { !$0.recognizes(record) }, "\(name) taken for one of \(mine.filter { $0.recognizes(record) })")
        }
        #expect(SourceFormat.detect(try Self.node("{}")) == nil)
    }

    @Test("identity kinds are consistent across the five sources")
    func identityMapping() throws {
        // A person, a machine identity, a bare token, nobody — as each source says it.
        #expect(AzureKeyVaultDecoder.identity(try Self.node(#"{"claim":{"upn":"a@b"}}"#)).kind == .human)
        #expect(AzureKeyVaultDecoder.identity(try Self.node(#"{"claim":{"appid":"x"}}"#)).kind == .service)
        #expect(AzureKeyVaultDecoder.identity(nil).kind == .unknown)
        #expect(KubernetesAuditDecoder.identity(try Self.node(#"{"user":{"username":"system:kube-controller-manager"}}"#)).kind == .service)
        #expect(KubernetesAuditDecoder.identity(try Self.node(#"{"user":{"username":"system:admin"}}"#)).kind == .root)
        #expect(KubernetesAuditDecoder.identity(try Self.node(#"{}"#)).kind == .unknown)
        #expect(InfisicalAuditDecoder.actor(try Self.node(#"{"type":"machine","metadata":{"identityId":"i"}}"#), userAgentType: nil).kind == .service)
        #expect(InfisicalAuditDecoder.actor(try Self.node(#"{"type":"unknownUser"}"#), userAgentType: nil).kind == .unknown)
        #expect(OnePasswordEventsDecoder.identity(try Self.node(#"{"uuid":"u","type":"service_account"}"#), client: nil).kind == .service)
        #expect(OnePasswordEventsDecoder.identity(nil, client: nil).kind == .unknown)
        #expect(DopplerActivityDecoder.actor(try Self.node(#"{"kind":"serviceToken","slug":"s"}"#), session: nil).kind == .api_key)
        #expect(DopplerActivityDecoder.actor(try Self.node(#"{"kind":"bot","slug":"doppler"}"#), session: nil).kind == .service)
        #expect(DopplerActivityDecoder.actor(nil, session: nil).kind == .unknown)
    }

    // MARK: - Fuzz

    @Test("fuzz: mutated and truncated real records, random bytes, deep nesting, huge strings")
    func fuzz() throws {
        var rng = SeededRNG(seed: 0x7361_6173_6675_7a7a)
        var seeds: [[UInt8]] = []
        for f in ["azure-1.json", "azure-records.json", "k8s-1.json", "infisical-audit.json", "onepassword-events.json"] {
            seeds.append(try Fixture.data("sources/" + f))
        }
        for f in ["k8s-audit.ndjson", "doppler-1.ndjson", "doppler-written.ndjson"] { seeds += try Fixture.lines("sources/" + f) }
        seeds += try Self.onePasswordCarried().split(separator: 0x0A).map(Array.init)
        let secret = Array("SUPERSECRETVALUE".utf8)
        for round in 0..<1800 {
            var b = rng.pick(seeds)
            switch round % 6 {
            case 0: b = Array(b.prefix(rng.int(0...b.count)))
            case 1: for _ in 0..<rng.int(1...8) where !b.isEmpty { b[rng.int(0...(b.count - 1))] = UInt8.random(in: 0...255, using: &rng) }
            case 2: for _ in 0..<rng.int(1...4) where !b.isEmpty { b.insert(rng.pick(Array("{}[]\",:\\\n0/*.".utf8)), at: rng.int(0...b.count)) }
            case 3: b = (0..<rng.int(0...400)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 4: b = Array(repeating: rng.pick(Array("[{".utf8)), count: rng.int(30...5000)) + secret
            case 5 where round % 60 != 5:
                let i = rng.int(0...b.count), j = rng.int(i...b.count), k = rng.int(0...b.count)
                b.insert(contentsOf: Array(b[i..<j]), at: k)
            default:
                if let at = b.firstIndex(of: 0x3A) { b.insert(contentsOf: Array("\"".utf8) + Array(repeating: 0x41, count: rng.int(70_000...300_000)) + secret + Array("\",".utf8), at: at + 1) }
            }
            for format in SourceFormat.allCases {
                let out = SourceStreamDecoder.decodeAll(b, decoder: format.decoder(instance: "fuzz"))
                for o in out {
                    switch o {
                    case .rejected(let r): #expect(!r.reason.contains("SUPERSECRET") && r.reason.utf8.count < 300 && r.line >= 1)
                    case .ignored(_, let reason): #expect(!reason.contains("SUPERSECRET") && reason.utf8.count < 300)
                    case .event(let e, _):
                        #expect(e.canonicalJSON().count <= AccessEvent.maxEncodedSize)
                        #expect(try AccessEvent.decode(e.canonicalJSON()) == e)
                        if let path = e.secret?.path { #expect(!path.contains("/../") && !path.contains("//") && !path.hasSuffix("/..")) }
                    }
                }
            }
        }
        // Deep nesting inside a batch wrapper is rejected by the splitter's count, without recursion.
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)
        for (prefix, format) in [("{\"records\":", SourceFormat.azure), ("{\"kind\":\"EventList\",\"items\":", .kubernetes),
                                 ("{\"auditLogs\":", .infisical), ("{\"cursor\":\"c\",\"items\":", .onepassword), ("{\"metadata\":", .doppler)] {
            let d = Decoded(SourceStreamDecoder.decodeAll(Array(prefix.utf8) + deep + Array("}".utf8), decoder: format.decoder(instance: "x")))
            #expect(d.rejected.map(\.reason) == ["record nested more than 32 levels"], "\(format)")
        }
        // A huge secret name is refused, not cut into a path.
        let huge = String(repeating: "a", count: 60_000)
        let k = Self.decodeText(#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"h","stage":"ResponseComplete","verb":"get","user":{"username":"u"},"objectRef":{"resource":"secrets","namespace":"n","name":"\#(huge)"},"responseStatus":{"code":200},"stageTimestamp":"2026-01-01T00:00:00Z"}"#, .kubernetes)
        #expect(k.events.isEmpty && k.rejected.map(\.reason) == ["\"objectRef.name\" is not a valid secret name"])
        // Not a JSON object at all.
        for format in SourceFormat.allCases {
            #expect(Decoded(SourceStreamDecoder.decodeAll(Array("[1,2]\n\"x\"\n".utf8), decoder: format.decoder(instance: "x"))).events.isEmpty)
        }
    }
}
