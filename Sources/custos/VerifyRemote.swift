import AsyncHTTPClient
import CustosAlerting
import CustosCore
import CustosTrail
import Foundation
import NIOCore
import NIOSSL

/// `custos verify --url`: copies a running server's trail (checkpoint, every tile, every
/// entry bundle, read-only over the tlog-tiles routes) into a temporary directory and runs
/// the same verification as for a local data directory. Only the verifier key is trusted.
/// With `--state FILE` the last checkpoint verified is kept and the next run checks that the
/// server's tree still extends it (a rollback or fork shows up as a problem).
struct RemoteTrail {
    var base: String
    var token: String?
    var verifier: NoteVerifier
    var client: HTTPClient
    var concurrency = 8

    static let checkpointLimit = 1 << 20
    static let tileLimit = 256 * 32
    static let bundleLimit = 256 * (2 + 65_535)

    enum Failure: Error, CustomStringConvertible {
        case refused(String)      // 401/403: the token
        case missing(String)      // 404: a file the checkpoint needs
        case transport(String)
        var description: String {
            switch self { case .refused(let s), .missing(let s), .transport(let s): s }
        }
    }

    init(url: String, token: String?, verifier: NoteVerifier, client: HTTPClient = .shared) throws {
        var u = url
        while u.hasSuffix("/") { u.removeLast() }
        guard let parsed = URL(string: u), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme), parsed.host != nil,
              parsed.query == nil, parsed.fragment == nil else {
            throw CLIError.usage("--url must be an http:// or https:// URL of a custos server, without query (got \(url.prefix(200)))")
        }
        self.base = u
        self.token = token
        self.verifier = verifier
        self.client = client
    }

    /// AsyncHTTPClient retries a failing connection (refused, TLS handshake) until the
    /// deadline, so the first request (the checkpoint) gets a short one: an unreachable or
    /// untrusted server fails in seconds, not minutes.
    func get(_ path: String, limit: Int, timeout: TimeAmount = .seconds(60)) async throws(Failure) -> [UInt8] {
        var req = HTTPClientRequest(url: base + "/trail/" + path)
        if let token { req.headers.add(name: "Authorization", value: "Bearer \(token)") }
        do {
            let resp = try await client.execute(req, timeout: timeout)
            switch resp.status.code {
            case 200:
                var body = try await resp.body.collect(upTo: limit)
                return body.readBytes(length: body.readableBytes) ?? []
            case 401, 403:
                throw Failure.refused("the server refused the token for /trail/\(path) (HTTP \(resp.status.code)): an auditor token is needed (--token-file FILE or CUSTOS_TOKEN)")
            case 404:
                throw Failure.missing("/trail/\(path) is missing on the server (HTTP 404)")
            default:
                throw Failure.transport("GET /trail/\(path): HTTP \(resp.status.code)")
            }
        } catch let f as Failure {
            throw f
        } catch let e as NIOTooManyBytesError {
            throw Failure.transport("GET /trail/\(path): the answer is larger than \(limit) bytes (\(e))")
        } catch {
            throw Failure.transport("GET /trail/\(path): \(NetworkErrorClass.describeBriefly(error, timeout: timeout))")
        }
    }

    /// Downloads the trail the current checkpoint describes into `layout`; returns its size.
    /// A partial tile the server replaced meanwhile (the tree grew) gives a 404: then the
    /// newer checkpoint is fetched and the copy starts over, at most three times.
    func mirror(into layout: TrailLayout) async throws(Failure) -> (size: UInt64, note: [UInt8]) {
        var lastMissing = ""
        for _ in 0..<3 {
            let note = try await get("checkpoint", limit: Self.checkpointLimit, timeout: .seconds(10))
            let size: UInt64
            do { size = try SignedCheckpoint.open(note, verifier: verifier).checkpoint.size } catch {
                // Keep it: the verifier reports the bad signature as a problem of the trail.
                try write(note, to: layout.checkpointPath)
                return (0, note)
            }
            var paths: [(String, String, Int)] = TileMath.tiles(forTreeSize: size).map {
                (TilePath.tile(level: $0.level, index: $0.index, width: $0.width),
                 layout.tilePath(level: $0.level, index: $0.index, width: $0.width), Self.tileLimit)
            }
            // A pruned trail publishes its minimum index (signed) at /trail/pruned; bundles
            // below it are not fetched (the tiles stand in for them, as on disk).
            var firstBundle: UInt64 = 0
            do {
                let pruned = try await get("pruned", limit: 1 << 16, timeout: .seconds(10))
                try write(pruned, to: layout.prunedPath)
                if let m = try? TrailPruning.minimumIndex(layout: layout, verifier: verifier), m <= size { firstBundle = m / 256 }
            } catch .missing {
                // Not pruned (or a server without the route): every bundle is needed.
            }
            let bundles = (size + 255) / 256
            for b in firstBundle..<bundles {
                let width = (b + 1) * 256 <= size ? 256 : Int(size & 255)
                paths.append((TilePath.entries(index: b, width: width), layout.bundlePath(index: b, width: width), Self.bundleLimit))
            }
            do {
                try await fetchAll(paths)
                try write(note, to: layout.checkpointPath)
                return (size, note)
            } catch .missing(let m) {
                lastMissing = m
                continue
            }
        }
        throw Failure.missing(lastMissing + " (three times; is the server's trail damaged?)")
    }

    func fetchAll(_ paths: [(String, String, Int)]) async throws(Failure) {
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                func add() {
                    let (remote, local, limit) = paths[next]
                    next += 1
                    group.addTask {
                        let bytes = try await self.get(remote, limit: limit)
                        try self.write(bytes, to: local)
                    }
                }
                while next < min(concurrency, paths.count) { add() }
                while try await group.next() != nil {
                    if next < paths.count { add() }
                }
            }
        } catch let f as Failure {
            throw f
        } catch {
            throw Failure.transport("\(error)")
        }
    }

    func write(_ bytes: [UInt8], to path: String) throws(Failure) {
        let dir = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        } catch {
            throw Failure.transport("cannot write the local copy \(path): \(error)")
        }
    }
}

/// The token for `--url`: from `--token-file` (first line) or `CUSTOS_TOKEN`; never from the
/// command line, where other users could read it in the process list.
func remoteToken(file: String?) throws -> String? {
    if let file {
        guard let d = FileManager.default.contents(atPath: file), d.count <= 4096 else {
            throw CLIError.usage("--token-file: cannot read \(file) (or it is over 4 KiB)")
        }
        let t = String(decoding: d, as: UTF8.self).split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard !t.isEmpty else { throw CLIError.usage("--token-file: \(file) is empty") }
        return t
    }
    if let t = ProcessInfo.processInfo.environment["CUSTOS_TOKEN"], !t.isEmpty { return t }
    return nil
}

/// An HTTP client that trusts the CA certificates in `caFile` (PEM) for `--url https://...`
/// served with a private CA; nil `caFile`: the shared client with the system's roots.
func verifyHTTPClient(caFile: String?) throws -> (HTTPClient, owned: Bool) {
    guard let caFile else { return (.shared, false) }
    let certs: [NIOSSLCertificate]
    do { certs = try NIOSSLCertificate.fromPEMFile(caFile) } catch {
        throw CLIError.usage("--ca-file: \(caFile) is not a readable PEM certificate file (\(error))")
    }
    guard !certs.isEmpty else { throw CLIError.usage("--ca-file: \(caFile) holds no certificate") }
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .certificates(certs)
    tls.minimumTLSVersion = .tlsv12
    return (HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls)), true)
}
