import CustosCore
import CustosTrail
@testable import CustosServer
import CustosStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import Yams

/// openapi.yaml is true: the served copy is the repository's file, every path it lists is
/// exercised here with the role it names (and refused without a token where it needs one),
/// each answer's status and content type are among those it documents and JSON bodies carry
/// the schema's required fields, and every route the server has is in the document.
@Suite struct OpenAPITests {
    static var repoFile: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("openapi.yaml").path
    }

    static func document() throws -> [String: Any] {
        try #require(try Yams.load(yaml: OpenAPIDocument.yaml) as? [String: Any])
    }

    @Test func servedDocumentIsTheRepositoryFile() throws {
        let file = try String(contentsOfFile: Self.repoFile, encoding: .utf8)
        #expect(OpenAPIDocument.yaml + "\n" == file, "openapi.yaml changed: run scripts/embed-openapi.sh")
        let doc = try Self.document()
        #expect(doc["openapi"] as? String == "3.1.0")
    }

    struct Case: Sendable {
        var method: HTTPRequest.Method
        var template: String      // the path as the document lists it
        var uri: String           // a concrete request
        var role: String?         // nil: no token needed
        var body: String = ""
    }

    static let cases: [Case] = [
        Case(method: .get, template: "/healthz", uri: "/healthz", role: nil),
        Case(method: .get, template: "/readyz", uri: "/readyz", role: nil),
        Case(method: .get, template: "/openapi.yaml", uri: "/openapi.yaml", role: nil),
        Case(method: .post, template: "/v1/ingest", uri: "/v1/ingest?format=vault&instance=v1", role: "ingest",
             body: vaultPair(id: "o1", path: "secret/data/prod/db", name: "alice")
                + vaultPair(id: "o2", path: "secret/data/prod/db", name: "bob", error: "permission denied")),
        Case(method: .get, template: "/v1/events", uri: "/v1/events?outcome=denied&limit=10", role: "auditor"),
        Case(method: .get, template: "/v1/alerts", uri: "/v1/alerts?limit=10", role: "auditor"),
        Case(method: .get, template: "/v1/blast-radius", uri: "/v1/blast-radius?secret=secret/data/prod/*&from=2026-01-01", role: "auditor"),
        Case(method: .post, template: "/v1/silences", uri: "/v1/silences", role: "admin",
             body: #"{"reason":"maintenance","expires":"1h","class":"off_hours"}"#),
        Case(method: .get, template: "/v1/evidence", uri: "/v1/evidence?secret=secret/data/prod/*&kind=human&from=2026-01-01&to=2026-02-01", role: "auditor"),
        Case(method: .get, template: "/v1/incidents", uri: "/v1/incidents?state=all", role: "auditor"),
        Case(method: .get, template: "/v1/incidents/{id}", uri: "/v1/incidents/INCIDENT", role: "auditor"),
        Case(method: .post, template: "/v1/incidents/{id}/steps", uri: "/v1/incidents/INCIDENT/steps", role: "admin",
             body: #"{"step":"acknowledged"}"#),
        Case(method: .get, template: "/metrics", uri: "/metrics", role: "auditor"),
        Case(method: .get, template: "/trail/checkpoint", uri: "/trail/checkpoint", role: "auditor"),
        Case(method: .get, template: "/trail/pruned", uri: "/trail/pruned", role: "auditor"),
        Case(method: .get, template: "/trail/tile/{level}/{index}", uri: "/trail/tile/0/000.p/3", role: "auditor"),
        Case(method: .get, template: "/trail/tile/entries/{index}", uri: "/trail/tile/entries/000.p/3", role: "auditor"),
    ]

    /// (method, path) pairs the document lists.
    static func operations(_ doc: [String: Any]) throws -> [String: [String: Any]] {
        let paths = try #require(doc["paths"] as? [String: Any])
        var ops: [String: [String: Any]] = [:]
        for (path, item) in paths {
            let item = try #require(item as? [String: Any])
            for (method, op) in item where ["get", "post", "put", "patch", "delete"].contains(method) {
                ops["\(method.uppercased()) \(path)"] = try #require(op as? [String: Any])
            }
        }
        return ops
    }

    static func resolve(_ node: Any?, _ doc: [String: Any]) -> [String: Any]? {
        guard var o = node as? [String: Any] else { return nil }
        var hops = 0
        while let ref = o["$ref"] as? String, ref.hasPrefix("#/"), hops < 8 {
            var cur: Any? = doc
            for part in ref.dropFirst(2).split(separator: "/") { cur = (cur as? [String: Any])?[String(part)] }
            guard let next = cur as? [String: Any] else { return nil }
            o = next
            hops += 1
        }
        return o
    }

    /// What the document says about one operation, in Sendable form.
    struct Documented: Sendable {
        struct Shape: Sendable { var isArray: Bool; var required: [String] }
        var needsToken: Bool
        var codes: Set<String>
        var contentTypes: [String: Set<String>]     // status -> media types
        var json: [String: Shape]                   // status -> required fields of the JSON body
    }

    static func documented(_ op: [String: Any], _ doc: [String: Any]) -> Documented {
        let globalSecurity = doc["security"] as? [Any]
        let needsToken = !((op["security"] as? [Any])?.isEmpty ?? (globalSecurity?.isEmpty ?? true))
        var d = Documented(needsToken: needsToken, codes: [], contentTypes: [:], json: [:])
        for (code, r) in op["responses"] as? [String: Any] ?? [:] {
            d.codes.insert(code)
            guard let resolved = resolve(r, doc), let content = resolved["content"] as? [String: Any] else { continue }
            d.contentTypes[code] = Set(content.keys)
            if let media = content["application/json"] as? [String: Any], let schema = resolve(media["schema"], doc) {
                if schema["type"] as? String == "array" {
                    d.json[code] = .init(isArray: true, required: resolve(schema["items"], doc)?["required"] as? [String] ?? [])
                } else {
                    d.json[code] = .init(isArray: false, required: schema["required"] as? [String] ?? [])
                }
            }
        }
        return d
    }

    @Test func everyDocumentedPathAnswersAsDocumented() async throws {
        let doc = try Self.document()
        let ops = try Self.operations(doc)
        let covered = Set(Self.cases.map { "\($0.method.rawValue) \($0.template)" })
        #expect(Set(ops.keys) == covered, "paths in openapi.yaml without a test case, or cases for paths it does not list")
        let plan = ops.mapValues { Self.documented($0, doc) }

        let dir = TempDir()
        // Three denials of one secret raise a high alert, which opens the incident the
        // incident routes are exercised on.
        let (state, t) = try ServeTests.make(dir, policy: IncidentTests.policyYAML)
        let tokens = ["ingest": t.ingest, "auditor": t.auditor, "admin": t.admin]
        let dataPath = dir.path
        // A (trivially) pruned trail, so that /trail/pruned has a signed minimum index to serve.
        let layout = TrailLayout(dataDirectory: dir.path)
        let signer = try TrailKeys.load(layout: layout)
        try Data(try signer.sign("custos.pruned/v1\n\(signer.name)\n0\n").utf8).write(to: URL(fileURLWithPath: layout.prunedPath))
        try await buildApplication(state: state).test(.live) { client in
            let denials = IngestDetectionTests.denials([(0, 0), (1, 0), (2, 0)], prefix: "openapi")
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: [.authorization: "Bearer \(t.ingest)"],
                                     body: ByteBuffer(string: denials)) { r in #expect(r.status == .ok) }
            let incident = try #require(try EventReader(directory: dataPath).alerts(AlertQuery()).first?.alert.id)
            for var c in Self.cases {
                c.uri = c.uri.replacingOccurrences(of: "INCIDENT", with: incident)
                let key = "\(c.method.rawValue) \(c.template)"
                let d = try #require(plan[key])
                #expect(d.needsToken == (c.role != nil), "\(key): the document and the server disagree on needing a token")
                if d.needsToken {
                    try await client.execute(uri: c.uri, method: c.method, headers: [:], body: ByteBuffer(string: c.body)) { r in
                        #expect(r.status == .unauthorized, "\(key) without a token: \(r.status)")
                        #expect(d.codes.contains("401"), "\(key): 401 is not documented")
                    }
                    let other = ["ingest", "auditor", "admin"].first { $0 != c.role && !(key == "GET /metrics" && $0 == "admin") }!
                    try await client.execute(uri: c.uri, method: c.method, headers: [.authorization: "Bearer \(tokens[other]!)"],
                                             body: ByteBuffer(string: c.body)) { r in
                        #expect(r.status == .forbidden, "\(key) as \(other): \(r.status)")
                        #expect(d.codes.contains("403"), "\(key): 403 is not documented")
                    }
                }
                let headers: HTTPFields = c.role.map { [.authorization: "Bearer \(tokens[$0]!)"] } ?? [:]
                try await client.execute(uri: c.uri, method: c.method, headers: headers, body: ByteBuffer(string: c.body)) { r in
                    let code = String(r.status.code)
                    #expect(r.status.code < 300, "\(key): \(r.status) \(String(buffer: r.body).prefix(200))")
                    #expect(d.codes.contains(code), "\(key): status \(code) is not documented")
                    if let types = d.contentTypes[code] {
                        let type = (r.headers[.contentType] ?? "").split(separator: ";").first.map(String.init) ?? ""
                        #expect(types.contains(type), "\(key): content type \(type) is not documented (\(types.sorted()))")
                    }
                    if let shape = d.json[code] {
                        try Self.checkRequired(String(buffer: r.body), shape, where: key)
                    }
                }
            }
        }
    }

    /// Every required property is present, in the object or in each element of the array.
    static func checkRequired(_ body: String, _ shape: Documented.Shape, where key: String) throws {
        let value = try JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed])
        var objects: [[String: Any]] = []
        if shape.isArray {
            let arr = try #require(value as? [Any], "\(key): expected an array")
            objects = arr.compactMap { $0 as? [String: Any] }
            #expect(objects.count == arr.count, "\(key): array elements must be objects")
        } else {
            objects = [try #require(value as? [String: Any], "\(key): expected an object")]
        }
        for o in objects {
            for r in shape.required { #expect(o[r] != nil, "\(key): required property \(r) is missing") }
        }
    }

    @Test func everyRouteIsDocumented() throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        let ops = try Self.operations(try Self.document())
        let routes = buildRouter(state: state).routes
        #expect(!routes.isEmpty)
        for r in routes {
            let path = r.path.description.hasPrefix("/") ? r.path.description : "/" + r.path.description
            let templates = path == "/trail/tile/**" ? ["/trail/tile/{level}/{index}", "/trail/tile/entries/{index}"] : [path]
            for t in templates {
                #expect(ops["\(r.method.rawValue) \(t)"] != nil, "route \(r.method) \(path) is not in openapi.yaml")
            }
        }
    }
}
