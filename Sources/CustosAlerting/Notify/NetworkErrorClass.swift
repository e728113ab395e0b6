import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix

/// Names a network failure by its class only (`connection refused`, `timed out after 2 s`,
/// `TLS error`, ...). Error descriptions of the libraries can quote a URL or a host's
/// reply, and URLs carry credentials, so they are never passed on.
package enum NetworkErrorClass {
    static func describe(_ error: any Error, timeout: Duration) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .getConnectionFromPoolTimeout:
                return "timed out after \(seconds(timeout))"
            case .connectTimeout: return "connect timed out"
            case .tlsHandshakeTimeout: return "TLS handshake timed out"
            case .remoteConnectionClosed: return "connection closed by the server"
            case .cancelled: return "cancelled"
            case .invalidURL, .emptyHost, .emptyScheme: return "invalid URL"
            case .redirectLimitReached, .redirectCycleDetected: return "too many redirects"
            default:
                // `HTTPClientError.someCode`, without any associated value.
                let name = String(describing: e)
                return "HTTP client error (" + String(name.prefix { $0 != "(" && $0 != ":" }) + ")"
            }
        }
        if let e = error as? NIOConnectionError {
            if e.connectionErrors.contains(where: { isRefused($0.error) }) { return "connection refused" }
            if e.connectionErrors.isEmpty && (e.dnsAError != nil || e.dnsAAAAError != nil) { return "DNS lookup failed" }
            if let first = e.connectionErrors.first { return describe(first.error, timeout: timeout) }
            return "connection failed"
        }
        if let e = error as? ChannelError {
            switch e {
            case .connectTimeout: return "connect timed out"
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed: return "connection closed"
            default: return "channel error"
            }
        }
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case ECONNRESET, EPIPE: return "connection reset"
            case ETIMEDOUT: return "connect timed out"
            case EHOSTUNREACH, ENETUNREACH: return "host unreachable"
            default: return "I/O error (errno \(e.errnoCode))"
            }
        }
        if error is CancellationError { return "cancelled" }
        let type = String(reflecting: Swift.type(of: error))
        if type.contains("SSL") || type.contains("TLS") { return "TLS error" }
        if type.contains("DNS") || type.contains("Resolver") || type.contains("GAI") { return "DNS lookup failed" }
        return "network error (\(type.split(separator: ".").last.map(String.init) ?? type))"
    }

    /// A connection failure by its class (NIO's own text for a refused connection reads
    /// "connection reset (error set): Connection refused) (errno: 111)", and an HTTP client
    /// error can quote the URL); any other error, ours or a TLS certificate problem say, by its
    /// own description, which tells the operator more. For command lines and for logs of
    /// peers whose URLs hold no credentials (the configuration refuses those).
    package static func describeBriefly(_ error: any Error, timeout: TimeAmount) -> String {
        switch error {
        case is IOError, is NIOConnectionError, is ChannelError, is HTTPClientError, is CancellationError:
            return describe(error, timeout: .nanoseconds(timeout.nanoseconds))
        default:
            return "\(error)"
        }
    }

    static func isRefused(_ error: any Error) -> Bool {
        (error as? IOError)?.errnoCode == ECONNREFUSED
    }

    /// `2 s`, `0.5 s`.
    static func seconds(_ d: Duration) -> String {
        let s = RetryPolicy.seconds(d)
        return s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }
}
