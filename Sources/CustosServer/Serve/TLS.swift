import CustosCore
import Foundation
import NIOSSL

/// Certificate and key files for a listener (`tls: { cert: FILE, key: FILE }` in the serve
/// config). PEM; the certificate file may hold the chain (leaf first). TLS 1.2 or newer.
public struct TLSFiles: Sendable, Equatable {
    public var cert: String
    public var key: String
    public init(cert: String, key: String) { self.cert = cert; self.key = key }

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads both files and builds the server configuration. `label` names the config key
    /// in errors (`tls`, `audit_socket.tls`). A key file that other users can read is refused.
    public func serverConfiguration(label: String) throws(LoadError) -> TLSConfiguration {
        var st = stat()
        guard stat(key, &st) == 0 else { throw LoadError(description: "\(label).key: cannot read \(key)") }
        if st.st_mode & 0o077 != 0 {
            throw LoadError(description: "\(label).key: \(key) is readable by other users (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(cert) } catch {
            throw LoadError(description: "\(label).cert: \(cert) is not a readable PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw LoadError(description: "\(label).cert: \(cert) holds no certificate") }
        let privateKey: NIOSSLPrivateKey
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw LoadError(description: "\(label).key: \(key) is not a readable PEM private key (\(error))")
        }
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        c.minimumTLSVersion = .tlsv12
        // The key must belong to the certificate: a context fails to build otherwise.
        do { _ = try NIOSSLContext(configuration: c) } catch {
            throw LoadError(description: "\(label): the key \(key) does not match the certificate \(cert) (\(error))")
        }
        return c
    }

    public func serverContext(label: String) throws(LoadError) -> NIOSSLContext {
        let c = try serverConfiguration(label: label)
        do { return try NIOSSLContext(configuration: c) } catch { throw LoadError(description: "\(label): \(error)") }
    }

    /// Parses `{ cert: FILE, key: FILE }` at `path` (both required; relative to the config file).
    static func parse(_ node: ConfigNode?, _ path: String, _ r: inout ConfigReader, resolve: (String) -> String) -> TLSFiles? {
        var cert: String?, key: String?
        for l in r.mapping(node, path, allowed: ["cert", "key"]) {
            switch l.key {
            case "cert": cert = r.string(l.value, path + ".cert").map(resolve)
            case "key": key = r.string(l.value, path + ".key").map(resolve)
            default: break
            }
        }
        guard let cert, let key else {
            r.problem(path, node, "needs both cert and key (PEM files)")
            return nil
        }
        return TLSFiles(cert: cert, key: key)
    }
}
