import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore

/// A minimal S3 client (path-style addressing, SigV4): PUT with Object Lock, GET, GET
/// `?retention`, and bucket creation with Object Lock enabled (for tests and set-up).
public struct S3Client: Sendable {
    public var endpoint: String
    public var signer: SigV4
    public var client: HTTPClient

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var status: Int
        public var message: String
        public var description: String { message }
    }

    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and (optional)
    /// `AWS_SESSION_TOKEN`; region from `region` or `AWS_REGION`/`AWS_DEFAULT_REGION`
    /// (default us-east-1); endpoint from `endpoint` or `https://s3.<region>.amazonaws.com`.
    public static func fromEnvironment(endpoint: String?, region: String?, client: HTTPClient = .shared) throws -> S3Client {
        let env = ProcessInfo.processInfo.environment
        guard let ak = env["AWS_ACCESS_KEY_ID"], !ak.isEmpty, let sk = env["AWS_SECRET_ACCESS_KEY"], !sk.isEmpty else {
            throw Failure(status: 0, message: "S3 needs credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        let r = region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let token = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        var e = endpoint ?? "https://s3.\(r).amazonaws.com"
        while e.hasSuffix("/") { e.removeLast() }
        return S3Client(endpoint: e, signer: SigV4(accessKey: ak, secretKey: sk, sessionToken: token, region: r), client: client)
    }

    public init(endpoint: String, signer: SigV4, client: HTTPClient = .shared) {
        self.endpoint = endpoint; self.signer = signer; self.client = client
    }

    struct Response {
        var status: Int
        var body: [UInt8]
        var headers: [(String, String)] = []
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
    }

    func request(_ method: String, bucket: String, key: String?, query: [(String, String)] = [],
                 headers extra: [(String, String)] = [], body: [UInt8] = [], limit: Int = 64 << 20) async throws -> Response {
        guard let url = URL(string: endpoint), let host = url.host else {
            throw Failure(status: 0, message: "S3 endpoint \(endpoint) is not a URL")
        }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        var path = url.path
        while path.hasSuffix("/") { path.removeLast() }
        path += "/" + SigV4.uriEncode(bucket, keepSlash: false)
        if let key { path += "/" + SigV4.uriEncode(key, keepSlash: true) }
        let amzDate = SigV4.amzDate(Date())
        let payloadHash = SigV4.sha256Hex(body)
        var headers: [(String, String)] = [("host", hostHeader), ("x-amz-date", amzDate), ("x-amz-content-sha256", payloadHash)]
        if let t = signer.sessionToken { headers.append(("x-amz-security-token", t)) }
        headers += extra
        let signed = signer.sign(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash, amzDate: amzDate)
        let q = query.map { SigV4.uriEncode($0.0, keepSlash: false) + ($0.1.isEmpty ? "" : "=" + SigV4.uriEncode($0.1, keepSlash: false)) }
            .joined(separator: "&")
        let base = "\(url.scheme ?? "https")://\(hostHeader)"
        var req = HTTPClientRequest(url: base + path + (q.isEmpty ? "" : "?" + q))
        req.method = .init(rawValue: method)
        for (k, v) in headers where k != "host" { req.headers.add(name: k, value: v) }
        req.headers.add(name: "Authorization", value: signed.authorization)
        if !body.isEmpty || method == "PUT" {
            req.body = .bytes(ByteBuffer(bytes: body))
            req.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
        }
        let resp = try await client.execute(req, timeout: .seconds(60))
        var buf = try await resp.body.collect(upTo: limit)
        return Response(status: Int(resp.status.code), body: buf.readBytes(length: buf.readableBytes) ?? [],
                        headers: resp.headers.map { ($0.name, $0.value) })
    }

    static func failure(_ what: String, _ r: Response) -> Failure {
        let text = String(decoding: r.body.prefix(2000), as: UTF8.self)
        let code = xmlValue(text, "Code") ?? ""
        let msg = xmlValue(text, "Message") ?? ""
        return Failure(status: r.status, message: "\(what): HTTP \(r.status) \(code) \(msg)".trimmingCharacters(in: .whitespaces))
    }

    /// Creates `bucket` with Object Lock enabled (which also turns versioning on).
    public func createBucket(_ bucket: String) async throws {
        var body: [UInt8] = []
        if signer.region != "us-east-1" {
            body = Array("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(signer.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        let r = try await request("PUT", bucket: bucket, key: nil, headers: [("x-amz-bucket-object-lock-enabled", "true")], body: body)
        guard r.status == 200 else { throw Self.failure("create bucket \(bucket)", r) }
    }

    /// PUT with Object Lock in COMPLIANCE mode until `retainUntil` (Content-MD5, which
    /// Object Lock requires, is sent).
    public func putLocked(bucket: String, key: String, body: [UInt8], retainUntil: Date) async throws {
        let md5 = Data(Insecure.MD5.hash(data: body)).base64EncodedString()
        let r = try await request("PUT", bucket: bucket, key: key, headers: [
            ("content-md5", md5),
            ("x-amz-object-lock-mode", "COMPLIANCE"),
            ("x-amz-object-lock-retain-until-date", Self.iso8601(retainUntil)),
        ], body: body)
        guard r.status == 200 else { throw Self.failure("PUT \(key)", r) }
    }

    /// The object's bytes, or nil when there is none (404).
    public func get(bucket: String, key: String) async throws -> [UInt8]? {
        let r = try await request("GET", bucket: bucket, key: key)
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw Self.failure("GET \(key)", r) }
        return r.body
    }

    /// The object's Object Lock retention (`GET ?retention`): mode and retain-until date,
    /// or nil when the object has none. A store that answers `?retention` with something other
    /// than a `<Retention>` document (moto 5.2 returns the object itself) is asked with HEAD
    /// instead, whose `x-amz-object-lock-mode` and `-retain-until-date` headers S3 also sets.
    public func retention(bucket: String, key: String) async throws -> (mode: String, until: Date?)? {
        let r = try await request("GET", bucket: bucket, key: key, query: [("retention", "")], limit: 64 << 20)
        if r.status == 404 {
            let text = String(decoding: r.body.prefix(2000), as: UTF8.self)
            if Self.xmlValue(text, "Code") == "NoSuchObjectLockConfiguration" { return nil }
            throw Self.failure("GET \(key)?retention", r)
        }
        guard r.status == 200 else { throw Self.failure("GET \(key)?retention", r) }
        let text = String(decoding: r.body.prefix(4096), as: UTF8.self)
        if text.contains("<Retention") {
            guard let mode = Self.xmlValue(text, "Mode") else { return nil }
            return (mode, Self.xmlValue(text, "RetainUntilDate").flatMap(Self.parseISO8601))
        }
        let h = try await request("HEAD", bucket: bucket, key: key)
        guard h.status == 200 else { throw Self.failure("HEAD \(key)", h) }
        guard let mode = h.header("x-amz-object-lock-mode") else { return nil }
        return (mode, h.header("x-amz-object-lock-retain-until-date").flatMap(Self.parseISO8601))
    }

    static func xmlValue(_ text: String, _ tag: String) -> String? {
        guard let a = text.range(of: "<\(tag)>"), let b = text.range(of: "</\(tag)>", range: a.upperBound..<text.endIndex) else { return nil }
        return String(text[a.upperBound..<b.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public static func iso8601(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }

    public static func parseISO8601(_ s: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: s) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)
    }
}
